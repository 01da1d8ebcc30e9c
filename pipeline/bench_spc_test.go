package pipeline_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/spc"
)

// BenchmarkIngestSPC measures what checking every value against frozen
// SPC limits costs the tracker's ingest (issue 17, rules that act): the
// events of BenchmarkIngest consumed into a database with no limits, and
// into one with I-MR limits frozen for every torque characteristic the
// events carry (12 joints at 4 stations, all Nelson rules), alternating
// (each goes first every other time), in the same run. ratio = events/s
// with the limits over events/s without. read-ms/batch is what the other design would cost: reading the
// last points of each characteristic of a batch from the record (one
// Series query each) instead of keeping them in memory.
//
//	go test -run XXX -bench IngestSPC -benchtime 3x ./pipeline/
func BenchmarkIngestSPC(b *testing.B) {
	const n = 4000
	evs := benchEvents(b, n)
	var plainSec, spcSec, readSec float64
	reads := 0
	b.StopTimer()
	for i := range b.N {
		order := []bool{false, true}
		if i%2 == 1 { // neither run always goes first
			order = []bool{true, false}
		}
		for _, frozen := range order {
			e := newEnv(b)
			var keys []schema.CharKey
			if frozen {
				keys = freezeBenchLimits(b, e.store)
			}
			for _, ev := range evs {
				if err := e.pub.Publish(b.Context(), ev); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			start := time.Now()
			tr, stop := e.runBatch(pipeline.BatchSizeDefault)
			for {
				if n, err := tr.Pending(b.Context()); err == nil && n == 0 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			sec := time.Since(start).Seconds()
			b.StopTimer()
			stop()
			if !frozen {
				plainSec += sec
				continue
			}
			spcSec += sec
			if st := tr.Stats(); st.SPCPoints != int64(n*12) {
				b.Fatalf("checked %d values, want %d", st.SPCPoints, n*12)
			}
			// The other design: a batch's characteristics read per batch.
			start = time.Now()
			for _, k := range keys {
				if _, err := e.store.Series(b.Context(), schema.SeriesQuery{Key: k, From: time.Unix(0, 0), To: time.Now().Add(time.Hour), Last: 17}); err != nil {
					b.Fatal(err)
				}
			}
			readSec += time.Since(start).Seconds()
			reads++
		}
	}
	b.StartTimer()
	b.ReportMetric(float64(n*b.N)/plainSec, "events/s-plain")
	b.ReportMetric(float64(n*b.N)/spcSec, "events/s-spc")
	b.ReportMetric(plainSec/spcSec, "ratio")
	b.ReportMetric(1000*readSec/float64(reads), "read-ms/batch")
}

// freezeBenchLimits freezes limits for the torque of every joint of the
// bench events and returns their keys.
func freezeBenchLimits(b *testing.B, store *schema.Store) []schema.CharKey {
	b.Helper()
	lim := spc.Limits{Chart: spc.ChartConfig{Method: spc.MethodIMR, N: 1}, Location: spc.Lines{Centre: 108, UCL: 111, LCL: 105},
		Dispersion: spc.Lines{Centre: 1.128, UCL: 3.686, LCL: 0}, Sigma: 1}
	now := time.Now()
	var keys []schema.CharKey
	for _, st := range []string{"W01", "W02", "C01", "Q05"} {
		for j := range 12 {
			k := schema.CharKey{Kind: schema.KindTorque, Station: st, Name: fmt.Sprintf("J%d", j+1)}
			if _, err := store.FreezeLimits(b.Context(), schema.FrozenLimits{Key: k, Limits: lim, Rules: spc.NelsonRules,
				BaselineFrom: now.Add(-time.Hour), BaselineTo: now, FrozenBy: "bench", FrozenAt: now}, 0); err != nil {
				b.Fatal(err)
			}
			keys = append(keys, k)
		}
	}
	return keys
}
