package dashboard_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
)

// recordRig is a dashboard over a record the test writes itself, through
// the record's write path: no plant, no broker, no tracker.
type recordRig struct {
	owner, view, webStore *schema.Store
	dash                  *dashboard.Server
	cfg                   dashboard.Config
	n                     int
}

func newRecordRig(t *testing.T, stations []string, mod func(*dashboard.Config)) *recordRig {
	t.Helper()
	ctx := t.Context()
	url := pgtest.NewDB(t)
	r := &recordRig{}
	var err error
	if r.owner, err = schema.Open(ctx, url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.owner.Close)
	if r.view, err = schema.OpenAs(ctx, url, schema.RoleAuditor); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.view.Close)
	if r.webStore, err = schema.OpenAs(ctx, url, schema.RoleWeb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.webStore.Close)
	r.cfg = dashboard.Config{Addr: "127.0.0.1:0", Store: r.view, SPCWriter: r.webStore, Plant: "US1", Line: "L1",
		Logger: slog.New(slog.DiscardHandler), ShiftInterval: 300 * time.Millisecond}
	for _, s := range stations {
		r.cfg.Stations = append(r.cfg.Stations, dashboard.Station{ID: s, Name: "station " + s})
	}
	if mod != nil {
		mod(&r.cfg)
	}
	if r.dash, err = dashboard.Start(ctx, r.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.dash.Shutdown(sctx); err != nil {
			t.Error(err)
		}
	})
	return r
}

func (r *recordRig) url(path string) string { return r.dash.URL() + path[1:] }

// visit is one station cycle to record.
type visit struct {
	station, vin, result string
	at                   time.Time
	joints               []event.Joint
	tests                []event.Test
	bad                  []event.BadValue
	holds                []string // hold kinds it opens
}

// record writes visits (each an event) in one transaction, as the
// tracker would.
func (r *recordRig) record(t *testing.T, vs ...visit) []string {
	t.Helper()
	ids := make([]string, len(vs))
	err := r.owner.WithTx(t.Context(), func(tx *schema.Tx) error {
		for i, v := range vs {
			r.n++
			ids[i] = fmt.Sprintf("US1.L1.%s.cycle.%d", v.station, r.n)
			if _, err := tx.AppendEvents(t.Context(), []schema.EventRow{{ID: ids[i], Kind: "cycle", Plant: "US1", Line: "L1", Station: v.station, VIN: v.vin,
				OccurredAt: v.at, RecordedAt: v.at, Payload: []byte(`{}`)}}); err != nil {
				return err
			}
			ch := &schema.Changes{
				Vehicles: []schema.Vehicle{{VIN: v.vin, Model: "KW", Variant: "Turbo", Colour: "mint", FirstSeenAt: v.at, LastSeenAt: v.at, LastStation: v.station}},
				Visits: []schema.Visit{{EventID: ids[i], VIN: v.vin, Station: v.station, Counter: int64(r.n), Result: v.result,
					StartedAt: v.at.Add(-time.Second), FinishedAt: v.at, Joints: v.joints, Tests: v.tests, Bad: v.bad}},
			}
			for _, k := range v.holds {
				ch.Holds = append(ch.Holds, schema.HoldRecord{Hold: schema.Hold{VIN: v.vin, Station: v.station, Kind: k, Reason: k + " at " + v.station, EventID: ids[i], At: v.at}})
			}
			if err := tx.Apply(t.Context(), ch); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// state records a station state change.
func (r *recordRig) state(t *testing.T, station, state string, code int32, text string, at time.Time) {
	t.Helper()
	r.n++
	id := fmt.Sprintf("US1.L1.%s.state.%d", station, r.n)
	err := r.owner.WithTx(t.Context(), func(tx *schema.Tx) error {
		if _, err := tx.AppendEvents(t.Context(), []schema.EventRow{{ID: id, Kind: "state", Plant: "US1", Line: "L1", Station: station, OccurredAt: at, RecordedAt: at, Payload: []byte(`{}`)}}); err != nil {
			return err
		}
		return tx.Apply(t.Context(), &schema.Changes{States: []schema.StationState{{EventID: id, Station: station, Counter: int64(r.n), State: state, FaultCode: code, FaultText: text, ChangedAt: at}}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func carVIN(t *testing.T, serial int) string { return testVIN(t, serial) }

func okJoint(name string, torque float64) event.Joint {
	return event.Joint{Joint: name, Tool: "NR-1", TorqueNm: &torque, AngleDeg: new(30.0), OK: new(true)}
}

// torqueCars records n cars' lug_fl_1 torque at C04 a minute apart from
// base: a stable process around 108 N·m, with the value of car out (if
// any) replaced by outlier.
func torqueCars(t *testing.T, r *recordRig, base time.Time, n, out int, outlier float64) []float64 {
	t.Helper()
	rng := rand.New(rand.NewPCG(17, 1))
	var vs []visit
	var values []float64
	for i := range n {
		v := 108 + rng.NormFloat64()*0.8
		if i == out {
			v = outlier
		}
		values = append(values, v)
		vs = append(vs, visit{station: "C04", vin: carVIN(t, i+1), result: "OK", at: base.Add(time.Duration(i) * time.Minute), joints: []event.Joint{okJoint("lug_fl_1", v)}})
	}
	r.record(t, vs...)
	return values
}

var lugSPC = &line.SPC{Characteristics: []line.SPCCharacteristic{{Kind: "torque", Station: "C04", Name: "lug_fl_1", LSL: new(97.2), USL: new(118.8), Target: new(108.0)}}}

// postForm posts a form body to url and returns the status.
func postForm(t *testing.T, url, body string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// waitPage waits until expr is truthy on the page a navigation (a form
// submit, a click) leads to: errors while the old page goes are retried.
func waitPage(t *testing.T, b *browser, expr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`!!(`+expr+`)`))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", expr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
