package dashboard_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/keiline/keiline/spc"
)

// spcYearCars is a year of one line: two shifts of 480 cars a day for
// 260 working days (the "≥ 200,000 values").
const spcYearCars = 2 * 480 * 260

// BenchmarkSPCChartYear charts one characteristic over a year of one
// line's history (spcYearCars values of C04's lug_fl_1, among the wheel
// station's other joints) against its frozen limits: the series read, the
// rules checked on every value and the newest points drawn as SVG. The
// baseline is the bare query of the same rows in the same run, read
// without decoding. Run with
//
//	go test ./dashboard -run '^$' -bench SPCChartYear -benchtime 30x
//
// It reports the p50 and p99 of each in ms.
func BenchmarkSPCChartYear(b *testing.B) {
	ctx := b.Context()
	s, err := schema.Open(ctx, pgtest.NewDB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-365 * 24 * time.Hour)
	if err := s.EnsurePartitions(ctx, start, end); err != nil {
		b.Fatal(err)
	}
	// The joints as the tracker writes them (event id, slot, VIN, station,
	// joint, tool, torque, angle, OK, time), 4 joints a car, copied in
	// directly for speed; spread over the year's working time.
	step := end.Sub(start) / spcYearCars
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([][]any, 0, 4*spcYearCars)
	for car := range spcYearCars {
		at := start.Add(time.Duration(car) * step)
		v := fmt.Sprintf("7KLKW1NA%dVU%06d", car%10, car%1000000)
		id := fmt.Sprintf("US1.L1.C04.cycle.%d", car+1)
		for j := 1; j <= 4; j++ {
			ok := true
			rows = append(rows, []any{id, j, v, "C04", fmt.Sprintf("lug_fl_%d", j), "NR-C04", 108 + rng.NormFloat64(), 30 + rng.NormFloat64(), &ok, at})
		}
	}
	if _, err := s.Pool().CopyFrom(ctx, pgx.Identifier{"joints"}, []string{"event_id", "slot", "vin", "station", "joint", "tool", "torque_nm", "angle_deg", "ok", "made_at"},
		pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	rows = nil
	if _, err := s.Pool().Exec(ctx, `VACUUM (ANALYZE) joints`); err != nil {
		b.Fatal(err)
	}
	key := schema.CharKey{Kind: schema.KindTorque, Station: "C04", Name: "lug_fl_1"}
	base, err := s.Series(ctx, schema.SeriesQuery{Key: key, From: start, To: start.Add(7 * 24 * time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	l, err := spc.ComputeLimits(base.Points, spc.ChartConfig{Method: spc.MethodIMR, N: 1})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.FreezeLimits(ctx, schema.FrozenLimits{Key: key, Limits: l, Rules: spc.NelsonRules, BaselineFrom: start,
		BaselineTo: start.Add(7 * 24 * time.Hour), FrozenBy: "bench", FrozenAt: end}, 0); err != nil {
		b.Fatal(err)
	}
	req := dashboard.ChartRequest{Key: key, From: start, To: end.Add(time.Minute), Lang: "en", TraceBase: "/trace"}

	if testing.Verbose() {
		for _, sql := range []string{`EXPLAIN (ANALYZE) SELECT made_at, vin, event_id, torque_nm FROM joints
			WHERE station = $1 AND joint = $2 AND made_at >= $3 AND made_at < $4 ORDER BY made_at, event_id, slot`} {
			ex, err := s.Pool().Query(ctx, sql, key.Station, key.Name, req.From, req.To)
			if err != nil {
				b.Fatal(err)
			}
			for ex.Next() {
				var line string
				_ = ex.Scan(&line)
				if !strings.Contains(line, "Index Cond") && !strings.Contains(line, "Heap Fetches") {
					b.Log(line)
				}
			}
			ex.Close()
		}
	}
	var bare, series, chart []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		r, err := s.Pool().Query(ctx, `SELECT made_at, vin, event_id, torque_nm FROM joints
			WHERE station = $1 AND joint = $2 AND made_at >= $3 AND made_at < $4 ORDER BY made_at, event_id, slot`, key.Station, key.Name, req.From, req.To)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for r.Next() {
			_ = r.RawValues()
			n++
		}
		if r.Err() != nil || n != spcYearCars {
			b.Fatalf("bare query: %d rows, %v", n, r.Err())
		}
		bare = append(bare, time.Since(t0))

		t0 = time.Now()
		if _, err := s.Series(ctx, schema.SeriesQuery{Key: key, From: req.From, To: req.To}); err != nil {
			b.Fatal(err)
		}
		series = append(series, time.Since(t0))

		t0 = time.Now()
		v, err := dashboard.BuildChart(ctx, s, nil, req)
		if err != nil || v.SVG == nil || len(v.Chart.Points) != spcYearCars {
			b.Fatalf("chart: %v %s (%d points)", err, v.Problem, len(v.Chart.Points))
		}
		chart = append(chart, time.Since(t0))
	}
	b.StopTimer()
	q := func(ds []time.Duration, p float64) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(bare, 0.5), "bare-p50-ms")
	b.ReportMetric(q(bare, 0.99), "bare-p99-ms")
	b.ReportMetric(q(series, 0.5), "series-p50-ms")
	b.ReportMetric(q(series, 0.99), "series-p99-ms")
	b.ReportMetric(q(chart, 0.5), "chart-p50-ms")
	b.ReportMetric(q(chart, 0.99), "chart-p99-ms")
	b.ReportMetric(q(chart, 0.99)/q(bare, 0.99), "chart/bare-p99")
	b.ReportMetric(float64(spcYearCars), "values")
}
