package dashboard_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/spc"
)

// shiftRecord records a shift whose line starts 90 minutes after the
// shift began: 30 cars through C04 (torque), Q01 (a test) and S01, a NOK
// joint, a NOK test and an unreadable value each holding its car (one hold
// closed again), a fault at C04, and a torque outlier.
func shiftRecord(t *testing.T, r *recordRig, start time.Time) {
	t.Helper()
	var vs []visit
	for i := range 30 {
		v, at := carVIN(t, i+1), start.Add(time.Duration(i)*2*time.Minute)
		torque := 108 + float64(i%5)*0.3
		if i == 20 {
			torque = 117 // far beyond the control limits, within spec
		}
		j := okJoint("lug_fl_1", torque)
		c04 := visit{station: "C04", vin: v, result: "OK", at: at, joints: []event.Joint{j}}
		if i == 5 {
			c04.result, c04.joints[0].OK, c04.holds = "NOK", new(false), []string{schema.HoldNOK}
		}
		q01 := visit{station: "Q01", vin: v, result: "OK", at: at.Add(30 * time.Second),
			tests: []event.Test{{Name: "toe_front", Unit: "deg", Value: new(1.0), Low: new(0.5), High: new(1.5), OK: new(true)}}}
		switch i {
		case 9:
			q01.result, q01.tests[0].Value, q01.tests[0].OK, q01.holds = "NOK", new(2.0), new(false), []string{schema.HoldNOK}
		case 12:
			q01.result, q01.tests[0].Value, q01.tests[0].OK = "NOK", nil, nil
			q01.bad, q01.holds = []event.BadValue{{Tag: "Test1.Value", NodeID: "ns=1;s=Q01.Test1.Value", Reason: "bad quality"}}, []string{schema.HoldBadData}
		}
		vs = append(vs, c04, q01, visit{station: "S01", vin: v, result: "OK", at: at.Add(time.Minute)})
	}
	r.record(t, vs...)
	r.state(t, "C04", "running", 0, "", start)
	r.state(t, "C04", "fault", 501, "nutrunner fault", start.Add(20*time.Minute))
	r.state(t, "C04", "running", 0, "", start.Add(25*time.Minute))
	// The rework closes car 6's NOK hold (written as the owner: test data).
	if _, err := r.owner.Pool().Exec(t.Context(), `UPDATE holds SET closed_event_id = $3, closed_at = $4 WHERE vin = $1 AND kind = $2 AND closed_at IS NULL`,
		carVIN(t, 6), schema.HoldNOK, "US1.L1.R01.cycle.1", start.Add(40*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Limits frozen from the first 15 cars: the outlier breaks Nelson 1.
	s, err := r.view.Series(t.Context(), schema.SeriesQuery{Key: lugKey, From: start.Add(-time.Minute), To: start.Add(30 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := spc.ComputeLimits(s.Points, spc.ChartConfig{Method: spc.MethodIMR, N: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.webStore.FreezeLimits(t.Context(), schema.FrozenLimits{Key: lugKey, Limits: l, Rules: []spc.Rule{spc.Nelson1},
		BaselineFrom: start.Add(-time.Minute), BaselineTo: start.Add(30 * time.Minute), FrozenBy: "qe", FrozenAt: time.Now()}, 0); err != nil {
		t.Fatal(err)
	}
}

var lugKey = schema.CharKey{Kind: schema.KindTorque, Station: "C04", Name: "lug_fl_1"}

// fromPostgres computes the report's numbers straight from the record,
// with SQL of its own, for the window [from, asOf).
type fromPostgres struct {
	carsOut, firstPass, defects, opened, closed int64
	firstSeen                                   time.Time
	down                                        time.Duration
}

func computeFromPostgres(t *testing.T, r *recordRig, from, asOf time.Time) fromPostgres {
	t.Helper()
	var p fromPostgres
	db := r.owner.Pool()
	ctx := t.Context()
	q := func(sql string, dst ...any) {
		t.Helper()
		if err := db.QueryRow(ctx, sql, from, asOf).Scan(dst...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	q(`SELECT count(DISTINCT vin) FROM station_visits WHERE station = 'S01' AND finished_at >= $1 AND finished_at < $2`, &p.carsOut)
	q(`SELECT count(DISTINCT vin) FROM station_visits s WHERE station = 'S01' AND finished_at >= $1 AND finished_at < $2
		AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.vin = s.vin AND h.kind IN ('nok', 'bad_data'))`, &p.firstPass)
	q(`SELECT (SELECT count(*) FROM joints WHERE ok = false AND made_at >= $1 AND made_at < $2)
		+ (SELECT count(*) FROM test_results WHERE ok = false AND tested_at >= $1 AND tested_at < $2)
		+ (SELECT count(*) FROM bad_values b JOIN station_visits v USING (event_id) WHERE v.finished_at >= $1 AND v.finished_at < $2)`, &p.defects)
	q(`SELECT count(*) FILTER (WHERE opened_at >= $1 AND opened_at < $2), count(*) FILTER (WHERE closed_at >= $1 AND closed_at < $2) FROM holds`, &p.opened, &p.closed)
	q(`SELECT min(occurred_at) FROM event_log WHERE occurred_at >= $1 AND occurred_at < $2`, &p.firstSeen)
	var downS float64
	q(`SELECT coalesce(sum(extract(epoch FROM least(until, $2) - greatest(changed_at, $1))), 0) FROM (
		SELECT state, changed_at, coalesce(lead(changed_at) OVER (PARTITION BY station ORDER BY changed_at), $2) AS until FROM station_states) s
		WHERE state IN ('fault', 'maintenance') AND until > $1 AND changed_at < $2`, &downS)
	p.down = time.Duration(downS * float64(time.Second))
	return p
}

func pctOf(x float64) string { return fmt.Sprintf("%.1f %%", x*100) }

// TestShiftReportInTheBrowser: the shift report's numbers equal those
// computed straight from PostgreSQL; OEE counts from the line's first data
// (it started mid-shift); the PDF is produced.
func TestShiftReportInTheBrowser(t *testing.T) {
	shiftStart := time.Now().Add(-3 * time.Hour).Truncate(time.Minute)
	const ideal = 50 * time.Second
	r := newRecordRig(t, []string{"C04", "Q01", "S01"}, func(c *dashboard.Config) {
		c.ShiftStart, c.ShiftLength, c.SPC = shiftStart, 8*time.Hour, lugSPC
		c.Calendar = &line.Shifts{IdealCycle: ideal}
	})
	lineStart := shiftStart.Add(90 * time.Minute)
	shiftRecord(t, r, lineStart)

	b := newBrowser(t, 1200, 1600)
	b.do(t, chromedp.Navigate(r.url("/report/shift?lang=en")))
	waitPage(t, b, `document.querySelector('#r-cars-out')`)
	text := func(id string) string {
		t.Helper()
		return eval[string](t, b, `document.getElementById('`+id+`').textContent`)
	}
	parse := func(attr string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, eval[string](t, b, `document.getElementById('r-window').dataset.`+attr))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	from, asOf := parse("from"), parse("asOf")
	if !from.Equal(shiftStart) {
		t.Fatalf("report of the shift from %v, want %v", from, shiftStart)
	}
	p := computeFromPostgres(t, r, from, asOf)
	if !p.firstSeen.Equal(lineStart) {
		t.Fatalf("the record's first event %v, want the line's start %v", p.firstSeen, lineStart)
	}
	planned := asOf.Sub(p.firstSeen)
	run := planned - p.down
	a := run.Seconds() / planned.Seconds()
	perf := float64(p.carsOut) * ideal.Seconds() / run.Seconds()
	qual := float64(p.firstPass) / float64(p.carsOut)
	for _, c := range []struct{ id, want string }{
		{"r-cars-out", fmt.Sprint(p.carsOut)},
		{"r-first-pass", fmt.Sprint(p.firstPass)},
		{"r-fpy", pctOf(qual)},
		{"r-a", pctOf(a)},
		{"r-p", pctOf(perf)},
		{"r-q", pctOf(qual)},
		{"r-oee", pctOf(a * perf * qual)},
		{"r-jph", fmt.Sprintf("%.1f", float64(p.carsOut)/planned.Hours())},
		{"r-down", fmt.Sprintf("0:%02d:%02d", int(p.down.Minutes()), int(p.down.Seconds())%60)},
		{"r-defects-total", fmt.Sprint(p.defects)},
		{"r-holds-opened", fmt.Sprint(p.opened)},
		{"r-holds-closed", fmt.Sprint(p.closed)},
	} {
		if got := text(c.id); got != c.want {
			t.Errorf("%s = %q, want %q (from PostgreSQL)", c.id, got, c.want)
		}
	}
	if p.carsOut != 30 || p.firstPass != 27 || p.defects != 3 || p.opened != 3 || p.closed != 1 || p.down != 5*time.Minute {
		t.Errorf("the record is not what the test wrote: %+v", p)
	}
	// From the shift's start the line would show P below a third of this.
	if naive := float64(p.carsOut) * ideal.Seconds() / (asOf.Sub(from) - p.down).Seconds(); perf < 2*naive {
		t.Errorf("P %v is not counted from the line's first data (from the shift's start: %v)", perf, naive)
	}
	if got := text("r-alarms"); got == "0" || !strings.Contains(text("r-alarm-list"), carVIN(t, 21)) {
		t.Errorf("SPC alarms %s %q, want Nelson 1 at %s", got, text("r-alarm-list"), carVIN(t, 21))
	}
	if d := eval[string](t, b, `document.querySelector('#r-downtime').textContent`); !strings.Contains(d, "nutrunner fault") {
		t.Errorf("downtime %q lacks the fault", d)
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}

	t.Run("the shift API counts from the first data too", func(t *testing.T) {
		res, err := http.Get(r.url("/api/v1/shift"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v dashboard.ShiftView
		if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		if !v.PlannedFrom.Equal(lineStart) {
			t.Errorf("planned from %v, want the first data %v", v.PlannedFrom, lineStart)
		}
		if want := v.AsOf.Sub(lineStart).Seconds(); v.Line.PlannedS != want || v.Line.IdealCycleS != ideal.Seconds() {
			t.Errorf("planned %v s (ideal %v), want %v s (%v)", v.Line.PlannedS, v.Line.IdealCycleS, want, ideal.Seconds())
		}
	})
	t.Run("in Japanese", func(t *testing.T) {
		b.do(t, chromedp.Navigate(r.url("/report/shift?lang=ja")))
		waitPage(t, b, `document.querySelector('#r-cars-out')`)
		if body := eval[string](t, b, `document.body.textContent`); !strings.Contains(body, "シフト終了報告") || !strings.Contains(body, "直行率") {
			t.Error("the Japanese report lacks its title or first-pass yield")
		}
	})
	t.Run("the PDF", func(t *testing.T) {
		res, err := http.Get(r.url("/report/shift.pdf?lang=en"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		pdf, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
			t.Fatalf("GET shift.pdf: %s %s %.40q", res.Status, res.Header.Get("Content-Type"), pdf)
		}
		if n := len(regexp.MustCompile(`/Type\s*/Page\b[^s]`).FindAll(pdf, -1)); n < 1 {
			t.Errorf("the PDF has %d pages", n)
		}
		if out := os.Getenv("KEILINE_REPORT_PDF"); out != "" { // to look at it: pdftoppm -png -r 80 -f 1 -l 1 FILE docs/shift-report
			if err := os.WriteFile(out, pdf, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
}
