package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/spc"
)

// TestSPCOneBreakPerBreak: a run of twelve points above the centre line
// trips Nelson 2 at its ninth point and at every point after, but raises
// one break, at the ninth, holding the cars of the nine; once the run has
// ended, the next run of nine raises a break again. Subgroups (X̄-R of 3)
// are checked when their third value comes.
func TestSPCOneBreakPerBreak(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
	}{{"individuals", 1}, {"subgroups of 3", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			m := spc.MethodIMR
			if tc.n > 1 {
				m = spc.MethodXbarR
			}
			lim := spc.Limits{Chart: spc.ChartConfig{Method: m, N: tc.n}, Location: spc.Lines{Centre: 100, UCL: 103, LCL: 97},
				Dispersion: spc.Lines{Centre: 1, UCL: 100, LCL: 0}, Sigma: 1}
			c := newTestChar(t, lim, 2, []spc.Rule{spc.Nelson2})
			c.onBreak = "hold"
			// Plotted points: 12 above, 1 below, 9 above.
			sides := []float64{}
			for range 12 {
				sides = append(sides, 1)
			}
			sides = append(sides, -1)
			for range 9 {
				sides = append(sides, 1)
			}
			at := time.Now()
			var breaks []spcBreak
			var trippedAt []int
			k := 0
			for i, s := range sides {
				for j := range tc.n {
					k++
					bs := c.add(spcValue{v: 100 + s*0.5 + float64(j)*0.01, vin: fmt.Sprintf("VIN%03d", k), eventID: fmt.Sprintf("ev%d", k), at: at.Add(time.Duration(k) * time.Second)})
					if len(bs) > 0 && j != tc.n-1 {
						t.Fatalf("a break at value %d, inside a subgroup", k)
					}
					for range bs {
						trippedAt = append(trippedAt, i)
					}
					breaks = append(breaks, bs...)
				}
			}
			if len(breaks) != 2 || trippedAt[0] != 8 || trippedAt[1] != 21 {
				t.Fatalf("breaks at points %v, want 8 and 21", trippedAt)
			}
			b := breaks[0]
			if b.b.Rule != "nelson2" || b.b.Points != 9 || b.b.LimitsVersion != 2 || b.b.FirstVIN != "VIN001" || len(b.vin) != 9*tc.n ||
				b.b.PointVIN != fmt.Sprintf("VIN%03d", 9*tc.n) || b.b.PointEventID != fmt.Sprintf("ev%d", 9*tc.n) {
				t.Fatalf("first break %+v, holding %v", b.b, b.vin)
			}
			if got := breaks[1].vin[0]; got != fmt.Sprintf("VIN%03d", 13*tc.n+1) {
				t.Fatalf("second break holds from %s, want the first car after the run ended", got)
			}
			if len(c.tail) > spcWindow*tc.n {
				t.Fatalf("keeps %d values, want at most %d", len(c.tail), spcWindow*tc.n)
			}
		})
	}
}

// BenchmarkSPCAdd is the monitor's cost per value of a characteristic
// with frozen limits (I-MR, all Nelson rules): what each joint of a cycle
// adds to the tracker's ingest.
func BenchmarkSPCAdd(b *testing.B) {
	lim := spc.Limits{Chart: spc.ChartConfig{Method: spc.MethodIMR, N: 1}, Location: spc.Lines{Centre: 100, UCL: 103, LCL: 97},
		Dispersion: spc.Lines{Centre: 1.128, UCL: 3.686, LCL: 0}, Sigma: 1}
	c := newTestChar(b, lim, 1, spc.NelsonRules)
	at := time.Now()
	vals := []float64{100.3, 99.1, 100.8, 99.6, 101.2, 98.9, 100.1, 99.8}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.add(spcValue{v: vals[i%len(vals)], vin: "VIN", eventID: "ev", at: at})
	}
}

func newTestChar(t testing.TB, lim spc.Limits, version int, rules []spc.Rule) *spcChar {
	t.Helper()
	st, err := spc.NewStream(lim, rules)
	if err != nil {
		t.Fatal(err)
	}
	return &spcChar{key: schema.CharKey{Kind: schema.KindTorque, Station: "C04", Name: "lug_fl_1"}, broken: map[spcRulePart]bool{}, stream: st,
		limits: schema.FrozenLimits{Version: version, Limits: lim, Rules: rules}}
}
