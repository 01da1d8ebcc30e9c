package event_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/pipeline/event"
)

// t0 is a time of today, to the second, as a PLC clock gives it.
var t0 = time.Now().UTC().Truncate(time.Second)

func mkVIN(t testing.TB, serial int) string {
	v, err := vin.Make("7KL", "KW1NA", 2027, 'U', serial)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func cycleEvent(t *testing.T, station, v string, counter uint32, at time.Time, result string) *event.Event {
	t.Helper()
	c := &event.Cycle{Counter: counter, Result: result, Model: "KW", Variant: "NA", Colour: "mint",
		Parts:  []event.Part{{PartNumber: "P-" + station, Serial: fmt.Sprintf("S-%s-%d", station, counter), Lot: "L1", Supplier: "SUP"}},
		Joints: []event.Joint{}, Tests: []event.Test{{Name: "gap", Value: new(3.1), Unit: "mm", Low: new(2.5), High: new(3.5), OK: new(true)}}}
	ev, err := event.NewEvent("US1", "L1", station, event.KindCycle, v, 0, uint64(counter), at, at, c)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestDecode(t *testing.T) {
	good := func(t *testing.T) *event.Event { return cycleEvent(t, "W01", mkVIN(t, 1), 4, t0, "OK") }
	tests := []struct {
		name   string
		mutate func(ev map[string]any)
		want   string // "" = valid
	}{
		{name: "valid", mutate: func(map[string]any) {}},
		{name: "future version", mutate: func(ev map[string]any) { ev["version"] = 2 }, want: "version 2 not supported"},
		{name: "unknown kind", mutate: func(ev map[string]any) { ev["kind"] = "bogus" }, want: `kind "bogus" unknown`},
		{name: "id not from counter", mutate: func(ev map[string]any) { ev["id"] = "US1.L1.W01.cycle.5" }, want: "id does not match counter 4"},
		{name: "station with a dot", mutate: func(ev map[string]any) { ev["station"] = "W.01" }, want: `station "W.01" must be`},
		{name: "no occurred_at", mutate: func(ev map[string]any) { delete(ev, "occurred_at") }, want: "occurred_at missing"},
		{name: "invalid VIN", mutate: func(ev map[string]any) { ev["vin"] = "NOTAVIN" }, want: "station W01: invalid VIN"},
		{name: "bad result", mutate: func(ev map[string]any) { ev["data"].(map[string]any)["result"] = "MAYBE" }, want: `result "MAYBE" must be OK or NOK`},
		// A VIN the PLC gave with bad quality leaves the car unknown: the
		// agent does not acknowledge such a cycle, and the tracker refuses it.
		{name: "VIN reported bad", mutate: func(ev map[string]any) {
			ev["vin"] = ""
			ev["data"].(map[string]any)["bad"] = []any{map[string]any{"tag": "Result.Vin", "node_id": "ns=1;s=x", "reason": "bad quality"}}
		}, want: "no car identity"},
		{name: "body number only", mutate: func(ev map[string]any) { ev["vin"] = ""; ev["body"] = "4100001" }},
		{name: "body number with a space", mutate: func(ev map[string]any) { ev["vin"] = ""; ev["body"] = "41 00001" }, want: "without spaces"},
		{name: "epoch in the id", mutate: func(ev map[string]any) {
			ev["data"].(map[string]any)["epoch"] = 2
			ev["id"] = "US1.L1.W01.cycle.e2.4"
		}},
		{name: "epoch not in the id", mutate: func(ev map[string]any) { ev["data"].(map[string]any)["epoch"] = 2 }, want: "id does not match"},
		{name: "agent clock", mutate: func(ev map[string]any) { ev["data"].(map[string]any)["clock"] = "agent" }},
		{name: "unknown clock", mutate: func(ev map[string]any) { ev["data"].(map[string]any)["clock"] = "sundial" }, want: `clock "sundial"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(good(t))
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			tt.mutate(m)
			b, _ = json.Marshal(m)
			_, err := event.Decode(b)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Decode = %v, want it valid", err)
			case tt.want != "" && (err == nil || !errors.Is(err, event.ErrMalformed) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Decode = %v, want ErrMalformed saying %q", err, tt.want)
			}
		})
	}
}

func TestEventIDIsDeterministic(t *testing.T) {
	a := cycleEvent(t, "C04", mkVIN(t, 9), 17, t0, "OK")
	b := cycleEvent(t, "C04", mkVIN(t, 9), 17, t0.Add(time.Hour), "OK")
	if a.ID != b.ID || a.ID != "US1.L1.C04.cycle.17" {
		t.Fatalf("ids %q and %q, want both US1.L1.C04.cycle.17", a.ID, b.ID)
	}
	if got := event.Subject("US1", "L1", "C04", "cycle"); got != "keiline.US1.L1.C04.cycle" {
		t.Fatalf("Subject = %q", got)
	}
}

func FuzzDecode(f *testing.F) {
	ev, _ := event.NewEvent("US1", "L1", "W01", event.KindCycle, "1M8GDM9AXKP042788", 0, uint64(1), t0, t0,
		&event.Cycle{Counter: 1, Result: "OK", Parts: []event.Part{}, Joints: []event.Joint{}, Tests: []event.Test{}})
	b, _ := json.Marshal(ev)
	f.Add(b)
	st, _ := event.NewEvent("US1", "L1", "W01", event.KindState, "", 0, uint64(3), t0, t0, &event.State{Counter: 3, State: "fault", FaultCode: 101})
	b, _ = json.Marshal(st)
	f.Add(b)
	al, _ := event.NewEvent("US1", "L1", "C04", event.KindAlarm, "", 0, uint64(5), t0, t0,
		&event.Alarm{Counter: 5, Active: true, Code: event.AlarmWhileDisabled, Text: "tool disabled", Controller: "C04-NR1", TighteningID: 12})
	b, _ = json.Marshal(al)
	f.Add(b)
	b, _ = json.Marshal(tighteningEvent(f, 12))
	f.Add(b)
	f.Add([]byte(strings.Replace(string(b), `"mid":61`, `"mid":65,"torque_min_nm":null`, 1)))
	hu, _ := event.NewHuman("US1", "L1", "Q05", "1M8GDM9AXKP042788", event.Human{Action: event.ActionRelease, UserID: 3, User: "ito",
		Role: "quality_inspector", Meaning: "released: conforms", Reason: "ok"}, t0)
	b, _ = json.Marshal(hu)
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := event.Decode(b)
		if err != nil {
			if !errors.Is(err, event.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// Whatever is accepted has a subject and the id its counter gives.
		subj := event.Subject(ev.Plant, ev.Line, ev.Station, ev.Kind)
		if strings.Count(subj, ".") != 4 {
			t.Fatalf("accepted event makes subject %q", subj)
		}
		if ev.Validate() != nil {
			t.Fatal("Decode accepted what Validate rejects")
		}
		if ev.Kind == event.KindHuman {
			h, err := ev.Human()
			if err != nil || h.UserID <= 0 || h.User == "" || h.Role == "" || (event.NeedsCar(h.Action) && ev.VIN == "") {
				t.Fatalf("accepted decision %q without who or car: %+v, %v", ev.ID, h, err)
			}
		}
		if ev.Kind == event.KindTightening {
			td, err := ev.Tightening()
			if err != nil || ev.ID != event.TighteningEventID(ev.Plant, ev.Line, ev.Station, td.Controller, td.TighteningID) {
				t.Fatalf("accepted tightening %q: %+v, %v", ev.ID, td, err)
			}
		}
	})
}
