package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/pki"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgserver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkIngestSecured measures what security costs the tracker's
// ingest: the same realistic events waiting in the stream are consumed
// into a fresh database once with everything authenticated and encrypted
// (NATS with TLS, a client certificate, the tracker's nkey and its
// permissions; PostgreSQL over TLS with sslmode=verify-full as the writer
// role) and once with neither (plain NATS, PostgreSQL over plain TCP with
// scram), alternating which goes first, in the same run. Two PostgreSQL
// clusters of the same configuration serve the two sides. ratio = secured
// events/s over plain events/s (goal ≥ 0.9).
//
//	go test -run XXX -bench IngestSecured -benchtime 4x ./pipeline/
func BenchmarkIngestSecured(b *testing.B) {
	const n = 4000
	evs := benchEvents(b, n)
	r := newSecureRig(b)
	var sec, plain time.Duration
	b.StopTimer()
	for i := range b.N {
		modes := []bool{true, false}
		if i%2 == 1 {
			modes = []bool{false, true}
		}
		for _, secured := range modes {
			d := r.ingest(b, fmt.Sprintf("ingest_%d_%t", i, secured), secured, evs)
			if secured {
				sec += d
			} else {
				plain += d
			}
		}
	}
	b.StartTimer()
	secRate := float64(n*b.N) / sec.Seconds()
	plainRate := float64(n*b.N) / plain.Seconds()
	b.ReportMetric(secRate, "secured-events/s")
	b.ReportMetric(plainRate, "plain-events/s")
	b.ReportMetric(secRate/plainRate, "ratio")
}

// secureRig is the two sides of BenchmarkIngestSecured: a plain and a TLS
// PostgreSQL cluster, and the NATS identities of a secured server.
type secureRig struct {
	plainPG, tlsPG *pgserver.Server
	prov           *broker.Provisioned
	dir            string
}

func newSecureRig(b *testing.B) *secureRig {
	b.Helper()
	dir := b.TempDir()
	ca := filepath.Join(dir, "pgca")
	if err := pki.Init(ca); err != nil {
		b.Fatal(err)
	}
	cert, err := pki.Issue(ca, pki.Request{Name: "record-db", Kind: pki.Server, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		b.Fatal(err)
	}
	r := &secureRig{dir: dir}
	quiet := slog.New(slog.DiscardHandler)
	if r.plainPG, err = pgserver.Start(b.Context(), pgserver.Config{Dir: filepath.Join(dir, "pg-plain"), Logger: quiet}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.plainPG.Stop(context.WithoutCancel(b.Context())) })
	if r.tlsPG, err = pgserver.Start(b.Context(), pgserver.Config{Dir: filepath.Join(dir, "pg-tls"), Logger: quiet,
		TLS: &pgserver.TLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile, CAFile: filepath.Join(ca, pki.CACertFile)}}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.tlsPG.Stop(context.WithoutCancel(b.Context())) })
	parts := broker.Parts{
		{Name: "admin", Role: broker.RoleAdmin},
		{Name: "tracker-L1", Role: broker.RoleTracker, Plant: "US1", Line: "L1"},
		{Name: "agent-L1", Role: broker.RoleAgent, Plant: "US1", Line: "L1", Stations: []string{"W01", "W02", "C01", "Q05"}},
	}
	if r.prov, err = broker.Provision(filepath.Join(dir, "nats-sec"), parts, broker.ProvisionOptions{}); err != nil {
		b.Fatal(err)
	}
	return r
}

// ingest publishes evs to a fresh stream and times a tracker consuming them
// into a fresh database, db, on the secured or the plain side.
func (r *secureRig) ingest(b *testing.B, db string, secured bool, evs []*event.Event) time.Duration {
	b.Helper()
	ctx := b.Context()
	pg := r.plainPG
	cfg := broker.Config{StoreDir: filepath.Join(r.dir, db, "nats"), Logger: slog.New(slog.DiscardHandler)}
	if secured {
		pg, cfg.Security = r.tlsPG, &r.prov.Security
	}
	if err := pg.CreateDatabase(ctx, db); err != nil {
		b.Fatal(err)
	}
	if err := schema.ProvisionLogins(ctx, pg.URL(db), pg.PassFile()); err != nil {
		b.Fatal(err)
	}
	store, err := schema.OpenRole(ctx, pg.URL(db), schema.RoleWriter)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	srv, err := broker.Start(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	connect := func(part string) jetstream.JetStream {
		var nc *nats.Conn
		if secured {
			nc, err = r.prov.Credentials[part].Connect(srv.URL())
		} else {
			nc, err = nats.Connect(srv.URL())
		}
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		return js
	}
	admin := connect("admin")
	if err := streams.Ensure(ctx, admin, 1); err != nil {
		b.Fatal(err)
	}
	pub := streams.NewPublisher(connect("agent-L1"))
	for _, ev := range evs {
		if err := pub.Publish(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	tr, err := pipeline.NewTracker(pipeline.TrackerConfig{Route: route, BatchSize: pipeline.BatchSizeDefault, Store: store,
		JetStream: connect("tracker-L1"), Consumer: broker.TrackerConsumer("US1", "L1"), FilterSubject: broker.TrackerFilter("US1", "L1"),
		StreamsReady: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.Setup(ctx); err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	b.StartTimer()
	start := time.Now()
	go func() { done <- tr.Run(runCtx) }()
	for {
		if left, err := tr.Pending(ctx); err == nil && left == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if got := count(b, store, `SELECT count(*) FROM joints`); got != 12*len(evs) {
		b.Fatalf("%s: tracker wrote %d joints, want %d", db, got, 12*len(evs))
	}
	return took
}
