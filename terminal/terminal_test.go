package terminal_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/terminal"
)

// TestDefectRepairRelease: an operator at T03 records a defect, which
// holds the car; the rework station repairs it, which leaves the car for
// inspection; an inspector releases it with a signature. Each is saved
// only once committed, and the record says who, in which role, when and
// why.
func TestDefectRepairRelease(t *testing.T) {
	r := newRig(t, rigOpts{})
	car := mkVIN(t, 101)
	r.build(car, "T03")

	op := r.signIn("sato")
	page := op.get("/station/T03")
	for _, want := range []string{car, "KW", "4WD", `id="form-defect"`, "SCR-01", `id="form-andon"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("T03 page for an operator lacks %q", want)
		}
	}
	for _, hidden := range []string{`id="form-release"`, `id="form-hold"`, `id="form-repair"`} {
		if strings.Contains(page.body, hidden) {
			t.Errorf("T03 page shows an operator %s", hidden)
		}
	}
	defect := saved(t, "defect", op.post("/station/T03/defect", url.Values{"vin": {car}, "code": {"SCR-01"}, "zone": {"door_fl"},
		"severity": {"major"}, "text": {"scratch 3 cm above the handle"}}))
	// Saved means committed: the record has it the moment the page says so.
	if ok, err := r.auditor.HasEvent(t.Context(), defect); err != nil || !ok {
		t.Fatalf("the page said saved, but the record has no %s (%v)", defect, err)
	}
	if p := op.get("/station/T03?saved=" + defect); !strings.Contains(p.body, `id="saved"`) || !strings.Contains(p.body, defect) {
		t.Errorf("page after saving does not say saved: %s", p.body)
	}
	holds := r.holds(car)
	if len(holds) != 1 || holds[0].Kind != schema.HoldDefect || holds[0].EventID != defect {
		t.Fatalf("holds %+v, want the defect's", holds)
	}

	rework := r.signIn("kato")
	if p := rework.get("/station/R01?vin=" + car); !strings.Contains(p.body, `id="form-repair"`) || !strings.Contains(p.body, "SCR-01") {
		t.Fatalf("R01 page lacks the repair form for the defect: %s", p.body)
	}
	repair := saved(t, "repair", rework.post("/station/R01/repair", url.Values{"vin": {car}, "defect": {defect}, "text": {"polished"},
		"part_number": {"DOOR-HANDLE-FL"}, "serial": {"DH-0042"}, "lot": {"DH-LOT-7"}}))
	holds = r.holds(car)
	if len(holds) != 1 || holds[0].Kind != schema.HoldInspection || holds[0].EventID != repair {
		t.Fatalf("holds after the repair %+v, want the inspection hold", holds)
	}

	qi := r.signIn("ito")
	p := qi.get("/station/Q05?vin=" + car)
	if !strings.Contains(p.body, `id="form-release"`) || !strings.Contains(p.body, r.lc.People.Meaning()) {
		t.Fatalf("Q05 page for an inspector lacks the release form with its meaning: %s", p.body)
	}
	release := saved(t, "release", qi.post("/station/Q05/release", url.Values{"vin": {car}, "password": {password("ito")}, "reason": {"re-inspected under light"}}))
	if holds := r.holds(car); len(holds) != 0 {
		t.Errorf("holds after the release %+v, want none", holds)
	}
	acts, err := r.auditor.HumanActions(t.Context(), car)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ id, action, user, role, station string }{
		{defect, event.ActionDefect, "sato", "operator", "T03"},
		{repair, event.ActionRepair, "kato", "operator", "R01"},
		{release, event.ActionRelease, "ito", "quality_inspector", "Q05"},
	}
	if len(acts) != len(want) {
		t.Fatalf("decisions %+v, want %d", acts, len(want))
	}
	for i, w := range want {
		a := acts[i]
		if a.EventID != w.id || a.Action != w.action || a.User != w.user || a.Role != w.role || a.Station != w.station {
			t.Errorf("decision %d: %+v, want %+v", i, a, w)
		}
	}
	if acts[2].Meaning != r.lc.People.Meaning() || acts[2].Reason != "re-inspected under light" || acts[1].Cites != defect {
		t.Errorf("release %+v / repair %+v: want the signature's meaning and reason, the repair citing the defect", acts[2], acts[1])
	}
	if rep, err := r.owner.Audit(t.Context(), schema.AuditOptions{}); err != nil || len(rep.Problems) != 0 {
		t.Errorf("audit: %v %+v", err, rep)
	}
}

func (r *rig) holds(car string) []schema.HoldRecord {
	r.t.Helper()
	c, err := r.auditor.CarAt(r.t.Context(), car)
	if err != nil {
		r.t.Fatal(err)
	}
	return c.Holds
}

// TestFormsNameTheField: each bad field is refused on the server, 400, and
// the page names it; nothing is published.
func TestFormsNameTheField(t *testing.T) {
	r := newRig(t, rigOpts{})
	car := mkVIN(t, 102)
	r.build(car, "T03")
	op, qi, sup := r.signIn("sato"), r.signIn("ito"), r.signIn("abe")
	tests := []struct {
		name string
		c    *client
		path string
		form url.Values
		want string // the field named
		msg  string
	}{
		{"defect code not in the catalogue", op, "/station/T03/defect", url.Values{"vin": {car}, "code": {"NOPE"}, "zone": {"hood"}, "severity": {"minor"}}, "code", "not one of the choices"},
		{"defect without zone", op, "/station/T03/defect", url.Values{"vin": {car}, "code": {"SCR-01"}, "severity": {"minor"}}, "zone", "required"},
		{"defect severity unknown", op, "/station/T03/defect", url.Values{"vin": {car}, "code": {"SCR-01"}, "zone": {"hood"}, "severity": {"huge"}}, "severity", "not one of"},
		{"defect text too long", op, "/station/T03/defect", url.Values{"vin": {car}, "code": {"SCR-01"}, "zone": {"hood"}, "severity": {"minor"}, "text": {strings.Repeat("x", 501)}}, "text", "longer than 500"},
		{"defect on an unknown car", op, "/station/T03/defect", url.Values{"vin": {mkVIN(t, 999)}, "code": {"SCR-01"}, "zone": {"hood"}, "severity": {"minor"}}, "vin", "no car"},
		{"andon without a reason", op, "/station/T03/andon", url.Values{"op": {"pull"}}, "reason", "required"},
		{"andon neither pull nor clear", op, "/station/T03/andon", url.Values{"op": {"push"}, "reason": {"x"}}, "op", "not one of"},
		{"stop reason not a leaf", op, "/station/T03/classify", url.Values{"code": {"machine"}}, "code", "not one of"},
		{"stop cited of another station", op, "/station/T03/classify", url.Values{"code": {"mc_tool"}, "stop": {"US1.L1.T02.state.3"}}, "stop", "not a state event of station T03"},
		{"release without password", qi, "/station/Q05/release", url.Values{"vin": {car}}, "password", "required"},
		{"release of a car without quality hold", qi, "/station/Q05/release", url.Values{"vin": {car}, "password": {password("ito")}}, "vin", "no quality hold"},
		{"unhold of no hold", sup, "/station/T03/unhold", url.Values{"vin": {car}, "hold": {"US1.L1.T03.human.1"}, "reason": {"x"}}, "hold", "no open manual hold"},
		{"hold by a lot no car got", sup, "/station/T03/hold", url.Values{"lot": {"NO-SUCH-LOT"}, "reason": {"x"}}, "lot", "no car"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.c.post(tt.path, tt.form)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.body, "<b>"+tt.want+"</b>: ") || !strings.Contains(resp.body, tt.msg) {
				t.Errorf("%d, want 400 naming %s (%q): %s", resp.StatusCode, tt.want, tt.msg, resp.body)
			}
		})
	}
	if acts, err := r.auditor.StationActions(t.Context(), "T03", time.Now().Add(-time.Hour), 0); err != nil || len(acts) != 0 {
		t.Errorf("decisions recorded from refused forms: %+v %v", acts, err)
	}
	if resp := op.post("/station/T03/repair", url.Values{"vin": {car}, "defect": {"x"}, "text": {"y"}}); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(resp.body, "not a rework station") {
		t.Errorf("repair at T03: %d %s, want 400 naming the rework station", resp.StatusCode, resp.body)
	}
}

// TestRolesAndCSRF: anonymous decisions get 401, a session's decision
// without its CSRF token 403, and a role's forms are the server's to
// refuse (an operator cannot release or hold; a planner or an auditor
// records no defect) — nothing refused reaches the record.
func TestRolesAndCSRF(t *testing.T) {
	r := newRig(t, rigOpts{})
	car := mkVIN(t, 103)
	r.build(car, "T03")
	defect := url.Values{"vin": {car}, "code": {"SCR-01"}, "zone": {"hood"}, "severity": {"minor"}}
	if resp := r.anonymous().postForm("/station/T03/defect", defect); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous defect: %d, want 401", resp.StatusCode)
	}
	if resp := r.anonymous().get("/station/T03"); resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous page: %d, want the sign-in", resp.StatusCode)
	}
	op := r.signIn("sato")
	if resp := op.postForm("/station/T03/defect", defect); resp.StatusCode != http.StatusForbidden {
		t.Errorf("defect without CSRF token: %d, want 403", resp.StatusCode)
	}
	for _, tt := range []struct {
		user, path string
		form       url.Values
	}{
		{"sato", "/station/Q05/release", url.Values{"vin": {car}, "password": {password("sato")}}},
		{"sato", "/station/T03/hold", url.Values{"vin": {car}, "reason": {"x"}}},
		{"sato", "/station/T03/unhold", url.Values{"vin": {car}, "hold": {"x"}, "reason": {"x"}}},
		{"plan1", "/station/T03/defect", defect},
		{"mori", "/station/T03/andon", url.Values{"op": {"pull"}, "reason": {"x"}}},
		{"abe", "/station/Q05/release", url.Values{"vin": {car}, "password": {password("abe")}}},
	} {
		if resp := r.signIn(tt.user).post(tt.path, tt.form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s POST %s: %d, want 403", tt.user, tt.path, resp.StatusCode)
		}
	}
	if acts, err := r.auditor.StationActions(t.Context(), "T03", time.Now().Add(-time.Hour), 0); err != nil || len(acts) != 0 {
		t.Errorf("refused decisions in the record: %+v %v", acts, err)
	}
	// A wrong password is no signature.
	saved(t, "defect", op.post("/station/T03/defect", defect))
	qi := r.signIn("ito")
	if resp := qi.post("/station/Q05/release", url.Values{"vin": {car}, "password": {"not-my-password"}}); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(resp.body, "signature refused") {
		t.Errorf("release with a wrong password: %d %s", resp.StatusCode, resp.body)
	}
	if holds := r.holds(car); len(holds) != 1 {
		t.Errorf("holds %+v after a refused signature, want the defect's still open", holds)
	}
	if strings.Contains(r.logs.String(), "not-my-password") || strings.Contains(r.logs.String(), password("ito")) {
		t.Error("a password is in the log")
	}
}

// TestSavedOnlyOnceCommitted: while the tracker is down, a decision is
// durable in the stream but not in the record, and the page does not say
// saved; once the tracker runs, it is recorded exactly once.
func TestSavedOnlyOnceCommitted(t *testing.T) {
	r := newRig(t, rigOpts{commitTimeout: 500 * time.Millisecond})
	car := mkVIN(t, 104)
	r.build(car, "T03")
	r.stopTracker()
	op := r.signIn("sato")
	resp := op.post("/station/T03/andon", url.Values{"op": {"pull"}, "reason": {"missing clip"}})
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(resp.body, "not yet saved") || strings.Contains(resp.Header.Get("Location"), "saved") {
		t.Fatalf("decision with the tracker down: %d %q %s, want 504 not yet saved", resp.StatusCode, resp.Header.Get("Location"), resp.body)
	}
	r.startTracker()
	r.waitFor("the andon in the record", func() bool {
		acts, _ := r.auditor.StationActions(t.Context(), "T03", time.Now().Add(-time.Hour), 0)
		return len(acts) == 1 && acts[0].Action == event.ActionAndonPull && acts[0].User == "sato"
	})
}

// TestClassifyTheLastStop: the classify form offers the station's latest
// stop, and the classification cites it with a leaf of the reason tree.
func TestClassifyTheLastStop(t *testing.T) {
	r := newRig(t, rigOpts{})
	car := mkVIN(t, 107)
	r.build(car, "T03")
	stop := r.publish("T03", event.KindState, "", &event.State{State: "fault", FaultCode: 0, VinPresent: car})
	r.waitFor("the stop", func() bool { ok, _ := r.auditor.HasEvent(t.Context(), stop.ID); return ok })
	op := r.signIn("sato")
	if p := op.get("/station/T03"); !strings.Contains(p.body, `value="`+stop.ID+`"`) || !strings.Contains(p.body, `id="classify-last-stop"`) {
		t.Fatalf("the classify form does not offer the stop %s", stop.ID)
	}
	id := saved(t, "classify", op.post("/station/T03/classify", url.Values{"code": {"mc_tool"}, "stop": {stop.ID}, "reason": {"nutrunner socket worn"}}))
	acts, err := r.auditor.StationActions(t.Context(), "T03", time.Now().Add(-time.Hour), 0)
	if err != nil || len(acts) != 1 || acts[0].EventID != id || acts[0].Code != "mc_tool" || acts[0].Cites != stop.ID || acts[0].Reason != "nutrunner socket worn" {
		t.Errorf("decisions %+v %v, want the classification citing %s", acts, err, stop.ID)
	}
	// A wrong classification is corrected by a new decision citing it;
	// the first stays as it was.
	fix := saved(t, "correct", op.post("/station/T03/correct", url.Values{"decision": {id}, "text": {"it was the conveyor, not the tool"}}))
	if resp := op.post("/station/T03/correct", url.Values{"decision": {"US1.L1.T02.human.1"}, "text": {"x"}}); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(resp.body, "<b>decision</b>: no decision") {
		t.Errorf("correcting no decision of T03: %d %s", resp.StatusCode, resp.body)
	}
	acts, _ = r.auditor.StationActions(t.Context(), "T03", time.Now().Add(-time.Hour), 0)
	if len(acts) != 2 || acts[0].EventID != fix || acts[0].Cites != id || acts[1].EventID != id || acts[1].Code != "mc_tool" {
		t.Errorf("decisions %+v, want the correction citing the classification, which is unchanged", acts)
	}
}

// TestHoldByLot: a supervisor's hold on a lot holds every car that got it,
// one decision each, and releasing one car's hold leaves the others.
func TestHoldByLot(t *testing.T) {
	r := newRig(t, rigOpts{})
	a, b := mkVIN(t, 105), mkVIN(t, 106)
	for _, car := range []string{a, b} {
		r.publish("W01", event.KindCycle, car, &event.Cycle{Result: "OK", Model: "KW", Variant: "2WD", Colour: "mint", StartedAt: time.Now(),
			Parts: []event.Part{{PartNumber: "BIW", Serial: "S-" + car, Lot: "LOT-Q", Supplier: "SUP"}}, Joints: []event.Joint{}, Tests: []event.Test{}})
	}
	r.waitFor("both cars", func() bool {
		_, e1 := r.auditor.CarAt(t.Context(), a)
		_, e2 := r.auditor.CarAt(t.Context(), b)
		return e1 == nil && e2 == nil
	})
	sup := r.signIn("abe")
	saved(t, "hold lot", sup.post("/station/W01/hold", url.Values{"lot": {"LOT-Q"}, "reason": {"supplier quality alert"}}))
	for _, car := range []string{a, b} {
		hs := r.holds(car)
		if len(hs) != 1 || hs[0].Kind != schema.HoldManual || !strings.Contains(hs[0].Reason, "lot LOT-Q") {
			t.Fatalf("%s holds %+v, want the lot's manual hold", car, hs)
		}
	}
	hold := r.holds(a)[0].EventID
	saved(t, "unhold", sup.post("/station/W01/unhold", url.Values{"vin": {a}, "hold": {hold}, "reason": {"checked, good"}}))
	if len(r.holds(a)) != 0 || len(r.holds(b)) != 1 {
		t.Errorf("after releasing %s: holds %+v and %+v", a, r.holds(a), r.holds(b))
	}
	acts, _ := r.auditor.HumanActions(t.Context(), a)
	if !slices.ContainsFunc(acts, func(h schema.HumanAction) bool {
		return h.Action == event.ActionUnhold && h.Cites == hold && h.Role == "supervisor"
	}) {
		t.Errorf("decisions of %s %+v, want the supervisor's release citing the hold", a, acts)
	}
	// A station's output over a window: every car W01 made in it.
	now := time.Now()
	window := url.Values{"output_station": {"W01"}, "from": {now.Add(-time.Hour).Format(terminal.WindowLayout)},
		"to": {now.Add(time.Hour).Format(terminal.WindowLayout)}, "reason": {"W01 fixture out of calibration"}}
	saved(t, "hold window", sup.post("/station/W01/hold", window))
	for car, n := range map[string]int{a: 1, b: 2} {
		hs := r.holds(car)
		if len(hs) != n || !strings.Contains(hs[len(hs)-1].Reason, "output of W01 from") {
			t.Errorf("%s holds %+v, want %d, the last for W01's output", car, hs, n)
		}
	}
	window.Set("to", now.Add(-2*time.Hour).Format(terminal.WindowLayout))
	if resp := sup.post("/station/W01/hold", window); resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.body, "<b>to</b>: must be after from") {
		t.Errorf("a window ending before it starts: %d %s", resp.StatusCode, resp.body)
	}
}

// TestTerminalAndonOnTheDashboard: an andon pulled at a station terminal
// is an andon call on the supervisor's dashboard, with who and why, until
// it is cleared.
func TestTerminalAndonOnTheDashboard(t *testing.T) {
	r := newRig(t, rigOpts{dashboard: true})
	op, sup := r.signIn("sato"), r.signIn("abe")
	andon := func() string {
		resp := sup.get("/api/v1/shift")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/v1/shift: %d %s", resp.StatusCode, resp.body)
		}
		var doc struct {
			Andon []struct{ Station, By, Reason string } `json:"andon"`
		}
		if err := json.Unmarshal([]byte(resp.body), &doc); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range doc.Andon {
			out = append(out, a.Station+" "+a.By+": "+a.Reason)
		}
		return strings.Join(out, "; ")
	}
	saved(t, "pull", op.post("/station/T03/andon", url.Values{"op": {"pull"}, "reason": {"missing clip"}}))
	r.waitFor("the andon on the dashboard", func() bool { return andon() == "T03 sato: missing clip" })
	saved(t, "clear", op.post("/station/T03/andon", url.Values{"op": {"clear"}, "reason": {"clips delivered"}}))
	r.waitFor("the andon cleared on the dashboard", func() bool { return andon() == "" })
}
