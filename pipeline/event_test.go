package pipeline_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline"
)

func TestDecode(t *testing.T) {
	good := func(t *testing.T) *pipeline.Event { return cycleEvent(t, "W01", mkVIN(t, 1), 4, t0, "OK") }
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
		{name: "VIN reported bad", mutate: func(ev map[string]any) {
			ev["vin"] = ""
			ev["data"].(map[string]any)["bad"] = []any{map[string]any{"tag": "Result.Vin", "node_id": "ns=1;s=x", "reason": "bad quality"}}
		}},
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
			_, err := pipeline.Decode(b)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Decode = %v, want it valid", err)
			case tt.want != "" && (err == nil || !errors.Is(err, pipeline.ErrMalformed) || !strings.Contains(err.Error(), tt.want)):
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
	if got := pipeline.Subject("US1", "L1", "C04", "cycle"); got != "keiline.US1.L1.C04.cycle" {
		t.Fatalf("Subject = %q", got)
	}
}

func FuzzDecode(f *testing.F) {
	ev, _ := pipeline.NewEvent("US1", "L1", "W01", pipeline.KindCycle, "1M8GDM9AXKP042788", 1, t0, t0,
		&pipeline.Cycle{Counter: 1, Result: "OK", Parts: []pipeline.Part{}, Joints: []pipeline.Joint{}, Tests: []pipeline.Test{}})
	b, _ := json.Marshal(ev)
	f.Add(b)
	st, _ := pipeline.NewEvent("US1", "L1", "W01", pipeline.KindState, "", 3, t0, t0, &pipeline.State{Counter: 3, State: "fault", FaultCode: 101})
	b, _ = json.Marshal(st)
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := pipeline.Decode(b)
		if err != nil {
			if !errors.Is(err, pipeline.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// Whatever is accepted has a subject and the id its counter gives.
		subj := pipeline.Subject(ev.Plant, ev.Line, ev.Station, ev.Kind)
		if strings.Count(subj, ".") != 4 {
			t.Fatalf("accepted event makes subject %q", subj)
		}
		if ev.Validate() != nil {
			t.Fatal("Decode accepted what Validate rejects")
		}
	})
}
