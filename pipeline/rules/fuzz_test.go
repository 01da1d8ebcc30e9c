package rules_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/rules"
	"github.com/keiline/keiline/schema"
)

// FuzzApply feeds the rules batches of events as the tracker accepts them
// (decoded and checked under each identity policy, split at newlines),
// with a record that knows a car, a pending cycle and a body number pair:
// the rules never panic, every row names its car and event, a hold waits
// for an item exactly when it is an unknown hold, closes and resolutions
// name events of the batch, and no cycle is both filed and left pending.
func FuzzApply(f *testing.F) {
	car := mkVIN(f, 80)
	seeds := []*event.Event{
		cy{station: "W01", vin: car, result: "OK", min: 0}.event(f),
		cy{station: "T01", vin: car, body: "B-80", result: "NOK", min: 1, joints: []event.Joint{nokJoint}}.event(f),
		cy{station: "C01", body: "B-80", result: "OK", min: 2, joints: []event.Joint{{Joint: "J2", Tool: "T"}},
			bad: []event.BadValue{{Tag: "Joint1.TorqueNm", NodeID: "n", Reason: "bad"}, {Tag: "Part3.Serial", NodeID: "n", Reason: "bad"}}}.event(f),
		cy{station: "R01", vin: car, result: "OK", min: 3, joints: []event.Joint{fixedJ2}}.event(f),
		cy{station: "Q05", body: "B-81", result: "", min: 4, bad: []event.BadValue{{Tag: "Result.Status", NodeID: "n", Reason: "bad"}}}.event(f),
	}
	var batch [][]byte
	for _, ev := range seeds {
		b, _ := json.Marshal(ev)
		f.Add(b)
		batch = append(batch, b)
	}
	f.Add(bytes.Join(batch, []byte("\n")))
	alarm, _ := event.NewEvent("US1", "L1", "C01", event.KindAlarm, "", 0, 5, at(5), at(5), &event.Alarm{Counter: 5, Active: true, Code: "refused", Text: "x"})
	b, _ := json.Marshal(alarm)
	f.Add(b)
	for _, h := range []*event.Event{
		human(f, "T01", car, 5, event.Human{Action: event.ActionDefect, Code: "SCR-01", Zone: "hood", Severity: "minor"}),
		human(f, "R01", car, 6, event.Human{Action: event.ActionRepair, Cites: "US1.L1.T01.human.1", Text: "fixed"}),
		human(f, "Q05", car, 7, event.Human{Action: event.ActionRelease, Meaning: "conforms"}),
		human(f, "T01", car, 8, event.Human{Action: event.ActionUnhold, Cites: "e", Reason: "ok"}),
	} {
		b, _ := json.Marshal(h)
		f.Add(b)
	}
	stored, _ := json.Marshal(cy{station: "W02", body: "B-80", result: "OK", min: 1}.event(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, pol := range event.IdentityPolicies {
			var in []rules.Input
			for _, msg := range bytes.Split(data, []byte("\n")) {
				ev, err := event.DecodeFor(msg, pol)
				if err != nil {
					continue
				}
				x, err := rules.Decode(ev)
				if err != nil {
					t.Fatalf("an event DecodeFor accepts does not decode: %v", err)
				}
				in = append(in, x)
			}
			l := line
			l.Identity = pol
			view := &schema.View{
				Cars: map[string]*schema.CarView{car: {Vehicle: schema.Vehicle{VIN: car, LastPos: 2, LastStation: "T01", FirstSeenAt: at(0), LastSeenAt: at(1)},
					Holds: []schema.HoldRecord{{ID: 7, Hold: schema.Hold{VIN: car, Station: "C01", Kind: schema.HoldUnknown, EventID: "e", Item: schema.Item{Kind: "joint", Name: "J2", Slot: 1}}}}}},
				Pairs:   map[string][]string{"B-79": {car}},
				Pending: []schema.PendingCycle{{EventID: "US1.L1.W02.cycle.2", Body: "B-80", Station: "W02", Payload: stored}},
				LastSeq: map[string]int64{"SEATCO": 3},
			}
			r := rules.Apply(&l, view, in)
			ids := map[string]bool{"US1.L1.W02.cycle.2": true}
			for _, x := range in {
				ids[x.Event.ID] = true
			}
			for _, v := range r.Visits {
				if v.VIN == "" || !ids[v.EventID] {
					t.Errorf("visit %s of car %q", v.EventID, v.VIN)
				}
			}
			for _, h := range r.Holds {
				if h.VIN == "" || !ids[h.EventID] || (h.Kind == schema.HoldUnknown) != (h.Item.Kind != "") || h.Reason == "" {
					t.Errorf("hold %+v", h)
				}
				if h.ClosedEventID != "" && !ids[h.ClosedEventID] {
					t.Errorf("hold closed by %s, not of the batch", h.ClosedEventID)
				}
			}
			for _, c := range r.Closes {
				if c.ID != 7 || !ids[c.EventID] {
					t.Errorf("close %+v", c)
				}
			}
			for _, g := range r.Gate {
				if g.VIN == "" || !ids[g.EventID] || g.Released != (g.OpenHolds == 0) {
					t.Errorf("gate decision %+v", g)
				}
			}
			for _, p := range r.Pending {
				if (p.VIN == "") != (p.ResolvedEventID == "") {
					t.Errorf("pending %+v half resolved", p)
				}
				if p.VIN == "" && r.Keys[p.EventID] != "" {
					t.Errorf("cycle %s both pending and filed under %s", p.EventID, r.Keys[p.EventID])
				}
			}
			for _, v := range r.Vehicles {
				if v.VIN == "" || v.LastSeenAt.Before(v.FirstSeenAt) {
					t.Errorf("vehicle %+v", v)
				}
			}
		}
	})
}
