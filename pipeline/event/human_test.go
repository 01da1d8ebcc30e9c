package event_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
)

// TestHumanValidate: a person's decision needs who, a known action and
// the fields its action needs; the error names what is wrong.
func TestHumanValidate(t *testing.T) {
	const car = "7KLKW1NA6VU000002"
	at := time.Now().UTC()
	who := event.Human{UserID: 1, User: "sato", Role: "operator"}
	with := func(f func(h *event.Human)) event.Human { h := who; f(&h); return h }
	tests := []struct {
		name string
		vin  string
		h    event.Human
		want string // "" for valid
	}{
		{"defect", car, with(func(h *event.Human) {
			h.Action, h.Code, h.Zone, h.Severity = event.ActionDefect, "SCR", "hood", "minor"
		}), ""},
		{"defect without severity", car, with(func(h *event.Human) { h.Action, h.Code, h.Zone = event.ActionDefect, "SCR", "hood" }), "severity"},
		{"defect without a car", "", with(func(h *event.Human) {
			h.Action, h.Code, h.Zone, h.Severity = event.ActionDefect, "SCR", "hood", "minor"
		}), "vin missing"},
		{"defect on a bad VIN", "NOTAVIN", with(func(h *event.Human) {
			h.Action, h.Code, h.Zone, h.Severity = event.ActionDefect, "SCR", "hood", "minor"
		}), "station T03"},
		{"release unsigned", car, with(func(h *event.Human) { h.Action = event.ActionRelease }), "meaning"},
		{"repair citing nothing", car, with(func(h *event.Human) { h.Action, h.Text = event.ActionRepair, "fixed" }), "cites"},
		{"andon without a reason", "", with(func(h *event.Human) { h.Action = event.ActionAndonPull }), "reason missing"},
		{"andon", "", with(func(h *event.Human) { h.Action, h.Reason = event.ActionAndonPull, "missing clip" }), ""},
		{"nobody", "", event.Human{Action: event.ActionAndonPull, Reason: "x"}, "who is missing"},
		{"unknown action", car, with(func(h *event.Human) { h.Action = "approve" }), `action "approve" unknown`},
		{"text too long", "", with(func(h *event.Human) {
			h.Action, h.Reason = event.ActionAndonPull, strings.Repeat("x", event.HumanTextMax+1)
		}), "reason longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := event.NewHuman("P1", "L1", "T03", tt.vin, tt.h, at)
			if err != nil {
				t.Fatal(err)
			}
			err = ev.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("valid decision refused: %v", err)
			case tt.want != "" && (err == nil || !errors.Is(err, event.ErrMalformed) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want ErrMalformed saying %q", err, tt.want)
			}
		})
	}
}

// TestHumanIDFromCounter: the id is the submission's counter, so the same
// decision republished is the same event, and a forged id is refused.
func TestHumanIDFromCounter(t *testing.T) {
	at := time.Now()
	h := event.Human{Action: event.ActionAndonPull, Reason: "x", UserID: 1, User: "sato", Role: "operator"}
	ev, err := event.NewHuman("P1", "L1", "T03", "", h, at)
	if err != nil {
		t.Fatal(err)
	}
	if want := event.EventID("P1", "L1", "T03", event.KindHuman, 0, uint64(at.UnixNano())); ev.ID != want {
		t.Errorf("id %s, want %s", ev.ID, want)
	}
	ev.ID += "1"
	if err := ev.Validate(); err == nil || !strings.Contains(err.Error(), "id does not match counter") {
		t.Errorf("forged id: %v", err)
	}
}
