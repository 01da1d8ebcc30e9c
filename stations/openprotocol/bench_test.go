package openprotocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/keiline/keiline/simulator/torque"
)

// resultTemplate returns a MID 0061 frame of revision rev made by the
// simulated controller (tightening id 1), and the offset of its 10-digit
// tightening id.
func resultTemplate(b *testing.B, rev int) ([]byte, int) {
	ctrl := newController(b, func(c *torque.Config) { c.MaxResultRevision = rev })
	c, _ := startClient(b, testConfig(ctrl, "BENCH"))
	waitConnected(b, c, 1)
	prepare(b, c, "JA4KEI0000000100")
	tighten(b, ctrl, 1)
	r := recvResult(b, c)
	c.Close()
	param := "23"
	if rev >= 2 {
		param = "41"
	}
	at := bytes.Index(r.Raw, []byte(param+"0000000001"))
	if at < 0 {
		b.Fatalf("no tightening id in %q", r.Raw)
	}
	return r.Raw, at + 2
}

// flood writes n copies of template, tightening ids 1..n, as fast as the
// socket takes them, in writes of many frames.
func flood(w io.Writer, template []byte, idAt, n int) error {
	const perWrite = 256
	buf := bytes.Repeat(template, perWrite)
	for id := 1; id <= n; {
		k := min(perWrite, n-id+1)
		for i := range k {
			off := i*len(template) + idAt
			appendDigits(buf[off:off], id+i, 10)
		}
		if _, err := w.Write(buf[:k*len(template)]); err != nil {
			return err
		}
		id += k
	}
	return nil
}

// floodController is the least controller that sends results as fast as
// it can: it answers MID 0001 and 0060, then floods, and drains what the
// client sends (acknowledges) until the client leaves. start receives the
// time the flood began.
func floodController(ln net.Listener, template []byte, idAt, n int, start chan<- time.Time) error {
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	fr := NewFrameReader(conn, 0)
	ack := Frame{MID: midCommStartAck, Data: []byte("010004020103BENCH                    ")}
	for _, want := range []int{midCommStart, midResultSubscribe} {
		f, err := fr.Next()
		if err != nil || f.MID != want {
			return fmt.Errorf("want MID %04d, got %d: %v", want, f.MID, err)
		}
		if want == midResultSubscribe {
			ack = Frame{MID: midCommandAccepted, Data: []byte("0060")}
		}
		if _, err := conn.Write(ack.Append(nil)); err != nil {
			return err
		}
	}
	drained := make(chan error, 1)
	go func() {
		for {
			f, err := fr.Next()
			if err != nil {
				drained <- nil
				return
			}
			if f.MID == midCommStop {
				conn.Write(Frame{MID: midCommandAccepted, Data: []byte("0003")}.Append(nil))
			}
		}
	}()
	start <- time.Now()
	if err := flood(conn, template, idAt, n); err != nil {
		return err
	}
	return <-drained
}

// BenchmarkResults measures MID 0061 results per second through the
// client (read, framed, parsed, delivered, acknowledged) from a controller
// that floods them, against a bare TCP read loop of the same bytes in the
// same run.
func BenchmarkResults(b *testing.B) {
	template, idAt := resultTemplate(b, 2)
	n := b.N

	// Baseline: read the same bytes, no framing, no parsing.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	b.ResetTimer()
	bare := bareRead(b, ln, template, idAt, n)

	// The client against a flooding controller.
	start := make(chan time.Time, 1)
	served := make(chan error, 1)
	go func() { served <- floodController(ln, template, idAt, n, start) }()
	cfg := Config{ID: "BENCH", Address: ln.Addr().String(), ResultRevision: 2, Location: plantZone}
	c, _ := startClient(b, cfg)
	ctx := b.Context()
	var began time.Time
	for i := range n {
		r, ok := <-c.Results()
		if !ok {
			b.Fatal("results closed")
		}
		if i == 0 {
			began = <-start
		}
		if err := c.Ack(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	client := time.Since(began)
	b.StopTimer()
	c.Close()
	if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
		b.Fatal(err)
	}

	clientRate := float64(n) / client.Seconds()
	bareRate := float64(n) / bare.Seconds()
	b.ReportMetric(clientRate, "results/s")
	b.ReportMetric(bareRate, "bare-frames/s")
	b.ReportMetric(clientRate/bareRate, "client/bare")
}

// BenchmarkParseResult is the parse cost of one MID 0061.
func BenchmarkParseResult(b *testing.B) {
	for _, rev := range []int{1, 2, 7} {
		b.Run(fmt.Sprintf("rev%d", rev), func(b *testing.B) {
			raw, _ := resultTemplate(b, rev)
			f, err := DecodeFrame(raw)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseResult(f, plantZone); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// bareRead is how long a plain read loop takes to receive n frames flooded
// on a connection of ln.
func bareRead(b *testing.B, ln net.Listener, template []byte, idAt, n int) time.Duration {
	served := make(chan error, 1)
	begin := make(chan struct{})
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer conn.Close()
		<-begin
		served <- flood(conn, template, idAt, n)
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	total := n * len(template)
	buf := make([]byte, 64<<10)
	t0 := time.Now()
	close(begin)
	for got := 0; got < total; {
		k, err := conn.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		got += k
	}
	d := time.Since(t0)
	if err := <-served; err != nil {
		b.Fatal(err)
	}
	return d
}
