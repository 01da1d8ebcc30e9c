package schema_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/pki"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgserver"
	"github.com/keiline/keiline/schema/pgtest"
)

// BenchmarkAppendOverTLS appends batches of events as the writer, the
// tracker's path, over a plain scram connection (the baseline: pgtest's
// cluster) and over TLS with sslmode=verify-full (a cluster with hostssl
// only), in the same run; compare the two ns/event.
//
//	go test -run XXX -bench AppendOverTLS -benchtime 200x ./schema/
func BenchmarkAppendOverTLS(b *testing.B) {
	const batch, warmup = 100, 300
	dir := b.TempDir()
	ca := filepath.Join(dir, "ca")
	if err := pki.Init(ca); err != nil {
		b.Fatal(err)
	}
	cert, err := pki.Issue(ca, pki.Request{Name: "record-db", Kind: pki.Server, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := pgserver.Start(b.Context(), pgserver.Config{Dir: filepath.Join(dir, "pg"), Logger: slog.New(slog.DiscardHandler),
		TLS: &pgserver.TLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile, CAFile: filepath.Join(ca, pki.CACertFile)}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Stop(context.WithoutCancel(b.Context())) })
	if err := srv.CreateDatabase(b.Context(), "keiline"); err != nil {
		b.Fatal(err)
	}
	if err := schema.ProvisionLogins(b.Context(), srv.URL("keiline"), srv.PassFile()); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, url string }{{"plain", pgtest.NewDB(b)}, {"tls", srv.URL("keiline")}} {
		b.Run(c.name, func(b *testing.B) {
			owner, err := schema.Open(b.Context(), c.url)
			if err != nil {
				b.Fatal(err)
			}
			owner.Close()
			w, err := schema.OpenAs(b.Context(), c.url, schema.RoleWriter)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			now := time.Now().Truncate(time.Second)
			n := 0
			run := now.UnixNano() // ids new in every run: a duplicate appends nothing
			appendBatch := func() {
				evs := make([]schema.EventRow, batch)
				for i := range evs {
					n++
					id := fmt.Sprintf("US1.L1.W01.cycle.%d.%d", run, n)
					evs[i] = schema.EventRow{ID: id, Kind: "cycle", Plant: "US1", Line: "L1", Station: "W01", OccurredAt: now, RecordedAt: now,
						Payload: fmt.Appendf(nil, `{"id":%q,"data":{"counter":%d,"result":"OK"}}`, id, n)}
				}
				if err := w.WithTx(b.Context(), func(tx *schema.Tx) error {
					_, err := tx.AppendEvents(b.Context(), evs)
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
			// A new database is slow for its first few hundred commits
			// (WAL segments made, catalog caches filled): warm up first.
			for range warmup {
				appendBatch()
			}
			b.ResetTimer()
			for range b.N {
				appendBatch()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
		})
	}
}
