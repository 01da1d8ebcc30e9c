package cli

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/schema/pgserver"
)

// BenchmarkLineLatency runs the whole line (simulated PLCs, agents at the
// default 100 ms poll, embedded NATS, tracker, private PostgreSQL) at a
// takt of 1 s and reports the latency from a PLC finishing a cycle
// (Result.EndTime, when DataReady rises) to the event's row being
// committed, p50 and p99, next to the poll interval of the same run.
// Sub-benchmark secured is `up` as it ships (NATS with TLS, client
// certificates, nkeys and permissions for every part; PostgreSQL with
// scram); plain runs the same line on an embedded NATS server with
// neither TLS nor authentication, in the same run, to show what security
// costs the latency.
//
//	go test -run XXX -bench LineLatency -benchtime 1x ./cmd/keiline/cli/
func BenchmarkLineLatency(b *testing.B) {
	b.Run("secured", func(b *testing.B) { benchLineLatency(b, false) })
	b.Run("plain", func(b *testing.B) { benchLineLatency(b, true) })
}

func benchLineLatency(b *testing.B, plainNATS bool) {
	for range b.N {
		state := filepath.Join(b.TempDir(), "state")
		u := &upRun{state: state, log: slog.New(slog.DiscardHandler), out: io.Discard}
		o := upOptions{speed: 60, seed: 1, cars: 30, poll: 100 * time.Millisecond}
		if plainNATS {
			srv, err := broker.Start(broker.Config{StoreDir: filepath.Join(b.TempDir(), "nats"), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Shutdown()
			o.nats = srv.URL()
		}
		err := u.run(b.Context(), o)
		if err != nil {
			u.close(b.Context())
			b.Fatal(err)
		}
		port, ok := pgserver.Running(filepath.Join(state, "pg"))
		if !ok {
			b.Fatal("private PostgreSQL not running")
		}
		conn, err := pgx.Connect(b.Context(), privateURL(filepath.Join(state, "pg"), port))
		if err != nil {
			b.Fatal(err)
		}
		// Where the time goes: the agent's side is DataReady to the agent
		// reading the block (recorded_at, the agent's clock: the poll wait
		// and the Read); the rest is publishing (the stream's fsync),
		// delivery to the tracker and its batch up to the row's insert.
		var p50, p99, max, readP99, recordP99, recordP50 float64
		var n int
		err = conn.QueryRow(b.Context(), `
			SELECT count(*),
			       percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
			       percentile_cont(0.99) WITHIN GROUP (ORDER BY ms),
			       max(ms),
			       percentile_cont(0.99) WITHIN GROUP (ORDER BY read_ms),
			       percentile_cont(0.5) WITHIN GROUP (ORDER BY record_ms),
			       percentile_cont(0.99) WITHIN GROUP (ORDER BY record_ms)
			FROM (SELECT extract(epoch FROM committed_at - occurred_at) * 1000 AS ms,
			             extract(epoch FROM recorded_at - occurred_at) * 1000 AS read_ms,
			             extract(epoch FROM committed_at - recorded_at) * 1000 AS record_ms
			      FROM event_log WHERE kind = 'cycle') l`).
			Scan(&n, &p50, &p99, &max, &readP99, &recordP50, &recordP99)
		conn.Close(context.WithoutCancel(b.Context()))
		u.close(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(readP99, "p99-read-ms")
		b.ReportMetric(recordP50, "p50-record-ms")
		b.ReportMetric(recordP99, "p99-record-ms")
		b.ReportMetric(float64(n), "cycles")
		b.ReportMetric(p50, "p50-ms")
		b.ReportMetric(p99, "p99-ms")
		b.ReportMetric(max, "max-ms")
		b.ReportMetric(p99/100, "p99/poll")
	}
}
