package broker_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkPublishAck publishes 4,000 events one at a time and waits for
// each JetStream ack, as an agent does, to a server with TLS, client
// certificates, nkeys and permissions, and, in the same run, to a plain
// server (no TLS, no authentication): the ratio is the cost of security.
//
//	go test -run XXX -bench PublishAck -benchtime 3x ./pipeline/broker/
func BenchmarkPublishAck(b *testing.B) {
	const events = 4000
	plainB, err := broker.Start(broker.Config{StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer plainB.Shutdown()
	plainNC, err := nats.Connect(plainB.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer plainNC.Close()

	dir := filepath.Join(b.TempDir(), "sec")
	prov, err := broker.Provision(dir, plantParts(), broker.ProvisionOptions{})
	if err != nil {
		b.Fatal(err)
	}
	secB, err := broker.Start(broker.Config{StoreDir: filepath.Join(dir, "js"), Security: &prov.Security})
	if err != nil {
		b.Fatal(err)
	}
	defer secB.Shutdown()
	admin, err := prov.Credentials["admin"].Connect(secB.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	agent, err := prov.Credentials["agent-W01"].Connect(secB.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer agent.Close()

	newJS := func(nc *nats.Conn) jetstream.JetStream {
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		return js
	}
	for _, nc := range []*nats.Conn{plainNC, admin} {
		if err := streams.Ensure(b.Context(), newJS(nc), 1); err != nil {
			b.Fatal(err)
		}
	}
	plain, secure := streams.NewPublisher(newJS(plainNC)), streams.NewPublisher(newJS(agent))
	mk := func(round int) []*event.Event {
		evs := make([]*event.Event, events)
		now := time.Now()
		for i := range evs {
			c := uint32(round*events + i + 1)
			ev, err := event.NewEvent("US1", "L1", "W01", event.KindCycle, "", 0, uint64(c), now, now, &event.Cycle{Counter: c, Result: "OK"})
			if err != nil {
				b.Fatal(err)
			}
			evs[i] = ev
		}
		return evs
	}
	run := func(p *streams.Publisher, evs []*event.Event) time.Duration {
		start := time.Now()
		for _, ev := range evs {
			if err := p.Publish(b.Context(), ev); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	var plainT, secT time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		evs := mk(i)
		plainT += run(plain, evs)
		secT += run(secure, evs)
	}
	n := float64(b.N * events)
	b.ReportMetric(n/plainT.Seconds(), "plain_events/s")
	b.ReportMetric(n/secT.Seconds(), "secure_events/s")
	b.ReportMetric(plainT.Seconds()/secT.Seconds(), "ratio")
}
