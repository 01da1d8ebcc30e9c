package event_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keiline/keiline/pipeline/event"
)

// tighteningEvent is a valid tightening of controller C04-NR1.
func tighteningEvent(t testing.TB, id uint32) *event.Event {
	t.Helper()
	v := mkVIN(t, 3)
	td := &event.Tightening{Controller: "C04-NR1", Channel: 1, TighteningID: id, VIN: v, Pset: 1, PsetName: "M12 108Nm",
		BatchSize: 4, BatchCounter: 2, BatchStatus: event.StatusNOK, Result: event.StatusOK,
		TorqueStatus: event.StatusOK, AngleStatus: event.StatusOK, TorqueNm: new(108.4), TorqueMinNm: new(97.2), TorqueMaxNm: new(118.8),
		TorqueTargetNm: new(108.0), AngleDeg: new(44.0), AngleMinDeg: new(15.0), AngleMaxDeg: new(75.0), AngleTargetDeg: new(45.0),
		ControllerTime: t0, Joint: "lug_fl_2", Class: "A", ToolSerial: "NR1-0001", MID: 61}
	ev, err := event.NewTighteningEvent("US1", "L1", "C04", v, td, t0, t0)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestTighteningEvent(t *testing.T) {
	ev := tighteningEvent(t, 4711)
	if ev.ID != "US1.L1.C04.tightening.C04-NR1.4711" || ev.Kind != event.KindTightening {
		t.Fatalf("id %q kind %q", ev.ID, ev.Kind)
	}
	if got := event.Subject(ev.Plant, ev.Line, ev.Station, ev.Kind); got != "keiline.US1.L1.C04.tightening" {
		t.Errorf("subject %q", got)
	}
	data := func(f func(map[string]any)) func(map[string]any) {
		return func(ev map[string]any) { f(ev["data"].(map[string]any)) }
	}
	tests := []struct {
		name   string
		mutate func(map[string]any)
		want   string // "" = valid
	}{
		{name: "valid", mutate: func(map[string]any) {}},
		{name: "no car identity the line accepts", mutate: func(ev map[string]any) { ev["vin"] = "" }},
		{name: "fetched without limits", mutate: data(func(d map[string]any) {
			d["mid"] = 65
			for _, k := range []string{"torque_min_nm", "torque_max_nm", "torque_target_nm", "angle_min_deg", "angle_max_deg", "angle_target_deg"} {
				d[k] = nil
			}
		})},
		{name: "no joint assigned", mutate: data(func(d map[string]any) { d["joint"], d["class"] = "", "" })},
		{name: "agent clock", mutate: data(func(d map[string]any) { d["clock"] = "agent" })},
		{name: "id of another tightening", mutate: func(ev map[string]any) { ev["id"] = "US1.L1.C04.tightening.C04-NR1.4712" }, want: "id does not match controller C04-NR1 tightening 4711"},
		{name: "the cycle's id form", mutate: func(ev map[string]any) { ev["id"] = "US1.L1.C04.tightening.4711" }, want: "id does not match"},
		{name: "tightening id 0", mutate: data(func(d map[string]any) { d["tightening_id"] = 0 }), want: "tightening id 0"},
		{name: "controller with a dot", mutate: data(func(d map[string]any) { d["controller"] = "C04.NR1" }), want: `controller "C04.NR1" must be`},
		{name: "invalid VIN", mutate: func(ev map[string]any) { ev["vin"] = "NOTAVIN"; ev["data"].(map[string]any)["vin"] = "NOTAVIN" }, want: "station C04: invalid VIN"},
		{name: "envelope VIN not the tightening's", mutate: data(func(d map[string]any) { d["vin"] = "OTHER" }), want: `is not the tightening's VIN "OTHER"`},
		{name: "a body number", mutate: func(ev map[string]any) { ev["body"] = "4100001" }, want: "no body number"},
		{name: "result unknown", mutate: data(func(d map[string]any) { d["result"] = "" }), want: `result "" must be OK or NOK`},
		{name: "torque status", mutate: data(func(d map[string]any) { d["torque_status"] = "2" }), want: `torque_status "2" must be one of low, OK, high`},
		{name: "batch status", mutate: data(func(d map[string]any) { d["batch_status"] = "done" }), want: `batch_status "done"`},
		{name: "class D", mutate: data(func(d map[string]any) { d["class"] = "D" }), want: `class "D"`},
		{name: "class without joint", mutate: data(func(d map[string]any) { d["joint"] = "" }), want: "class A without a joint"},
		{name: "mid 62", mutate: data(func(d map[string]any) { d["mid"] = 62 }), want: "mid 62 must be 61 or 65"},
		{name: "negative batch counter", mutate: data(func(d map[string]any) { d["batch_counter"] = -1 }), want: "must not be negative"},
		{name: "a PLC clock", mutate: data(func(d map[string]any) { d["clock"] = "plc" }), want: `clock "plc"`},
		{name: "data not an object", mutate: func(ev map[string]any) { ev["data"] = []any{1} }, want: "tightening data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(ev)
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			tt.mutate(m)
			b, _ = json.Marshal(m)
			got, err := event.Decode(b)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Decode = %v, want it valid", err)
			case tt.want != "" && (err == nil || !errors.Is(err, event.ErrMalformed) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Decode = %v, want ErrMalformed saying %q", err, tt.want)
			case tt.want == "":
				td, err := got.Tightening()
				if err != nil || td.TighteningID != 4711 || td.Controller != "C04-NR1" {
					t.Fatalf("Tightening() = %+v, %v", td, err)
				}
			}
		})
	}
}

// TestTighteningValuesRoundTrip: the values survive the envelope; unknown
// stays unknown (null), never 0.
func TestTighteningValuesRoundTrip(t *testing.T) {
	ev := tighteningEvent(t, 9)
	b, _ := json.Marshal(ev)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["data"].(map[string]any)["torque_min_nm"] = nil
	b, _ = json.Marshal(m)
	got, err := event.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	td, _ := got.Tightening()
	if td.TorqueMinNm != nil || td.TorqueNm == nil || *td.TorqueNm != 108.4 || td.Joint != "lug_fl_2" || !td.ControllerTime.Equal(t0) {
		t.Fatalf("round trip: %+v", td)
	}
}
