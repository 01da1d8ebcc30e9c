package event

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// KindHuman is a person's decision on the line (DESIGN.md, "People and
// machines in one record"): a defect seen, a repair, a signed release, an
// andon pulled or cleared, a stop classified, a manual hold placed or
// released. The web server publishes it on the station's subject, like an
// agent publishes a cycle, and the tracker records it in the same
// hash-chained log. Nothing a person does is edited or deleted: a
// correction is a new human event that cites the old one (Cites).
const KindHuman = "human"

// Human actions.
const (
	// ActionDefect: an operator saw a defect on the car (Code from the
	// line's defect catalogue, Zone, Severity, Text); it holds the car.
	ActionDefect = "defect"
	// ActionRepair: the rework station repaired the defect Cites names
	// (Text says what was done, Parts what was replaced); the car then
	// waits for an inspector's signed release.
	ActionRepair = "repair"
	// ActionRelease: a quality inspector released the car from its quality
	// holds, signed (Meaning is the signature's meaning, shown and
	// recorded; the password was re-entered).
	ActionRelease = "release"
	// ActionAndonPull and ActionAndonClear: an andon pulled or cleared at
	// the station from its terminal, with a Reason.
	ActionAndonPull  = "andon_pull"
	ActionAndonClear = "andon_clear"
	// ActionClassify: a stop the PLC gave no reason for (Cites: its state
	// event) classified from the line's reason tree (Code).
	ActionClassify = "classify"
	// ActionHold and ActionUnhold: a supervisor placed a manual hold on
	// the car (Lot: because of that part lot) or released the one Cites
	// names.
	ActionHold   = "hold"
	ActionUnhold = "unhold"
	// ActionCorrect: a correction of an earlier decision (Cites), in Text:
	// nothing a person records is edited or deleted, it is corrected by a
	// new decision that cites it. It changes no hold; a wrong defect is
	// corrected and then repaired or released as usual.
	ActionCorrect = "correct"
)

// HumanActions are the actions a human event may carry.
var HumanActions = []string{ActionDefect, ActionRepair, ActionRelease, ActionAndonPull, ActionAndonClear, ActionClassify, ActionHold, ActionUnhold, ActionCorrect}

// Defect severities.
var Severities = []string{"minor", "major", "critical"}

// HumanTextMax is the longest free text (reason, defect text, repair)
// a human event takes, in bytes.
const HumanTextMax = 2000

// Human is the data of a KindHuman event.
type Human struct {
	// Counter is the web server's clock (Unix nanoseconds) when the
	// person submitted the action: the event id's counter, made once per
	// submission, so a republished event has the same id.
	Counter uint64 `json:"counter"`
	Action  string `json:"action"`
	// UserID, User and Role say who: the signed-in user and the role the
	// action needed.
	UserID int64  `json:"user_id"`
	User   string `json:"user"`
	Role   string `json:"role"`
	// Reason is why, in the person's words (an andon's reason, a hold's).
	Reason string `json:"reason,omitempty"`
	// Code is the defect code (ActionDefect) or the stop reason
	// (ActionClassify); Zone and Severity locate and grade a defect.
	Code     string `json:"code,omitempty"`
	Zone     string `json:"zone,omitempty"`
	Severity string `json:"severity,omitempty"`
	// Text is the defect's description, or what a repair did.
	Text string `json:"text,omitempty"`
	// Parts are the parts a repair replaced.
	Parts []Part `json:"parts,omitempty"`
	// Lot is the part lot a manual hold quarantines.
	Lot string `json:"lot,omitempty"`
	// Meaning is what a signature means ("released: repaired and
	// re-inspected, conforms"), shown to the signer and recorded.
	Meaning string `json:"meaning,omitempty"`
	// Cites is the event this one closes, corrects or classifies.
	Cites string `json:"cites,omitempty"`
}

// Human decodes the data of a human event.
func (ev *Event) Human() (*Human, error) {
	var h Human
	if err := json.Unmarshal(ev.Data, &h); err != nil {
		return nil, fmt.Errorf("%w: event %q: human data: %v", ErrMalformed, ev.ID, err)
	}
	return &h, nil
}

// NeedsCar reports whether action is about one car (the event's VIN).
func NeedsCar(action string) bool {
	switch action {
	case ActionAndonPull, ActionAndonClear, ActionClassify, ActionCorrect:
		return false
	}
	return true
}

// validateHuman checks a human event: its id from the counter, who, the
// action and the fields the action needs.
func (ev *Event) validateHuman(p IdentityPolicy, bad func(string, ...any) error) error {
	h, err := ev.Human()
	if err != nil {
		return err
	}
	if want := EventID(ev.Plant, ev.Line, ev.Station, ev.Kind, 0, h.Counter); ev.ID != want {
		return bad("id does not match counter %d (want %q)", h.Counter, want)
	}
	if !slices.Contains(HumanActions, h.Action) {
		return bad("action %q unknown (%s)", h.Action, strings.Join(HumanActions, ", "))
	}
	if h.UserID <= 0 || h.User == "" || h.Role == "" {
		return bad("%s: who is missing (user_id, user and role are required)", h.Action)
	}
	for name, v := range map[string]string{"reason": h.Reason, "text": h.Text, "meaning": h.Meaning, "code": h.Code,
		"zone": h.Zone, "lot": h.Lot, "cites": h.Cites, "user": h.User} {
		if len(v) > HumanTextMax || !utf8.ValidString(v) {
			return bad("%s: %s longer than %d bytes or not UTF-8", h.Action, name, HumanTextMax)
		}
	}
	if NeedsCar(h.Action) && ev.VIN == "" {
		return bad("%s: vin missing", h.Action)
	}
	if ev.VIN != "" {
		if err := p.Check(ev.VIN, ""); err != nil {
			return bad("station %s: %v", ev.Station, err)
		}
	}
	need := func(name, v string) error {
		if strings.TrimSpace(v) == "" {
			return bad("%s: %s missing", h.Action, name)
		}
		return nil
	}
	var errs []error
	switch h.Action {
	case ActionDefect:
		errs = append(errs, need("code", h.Code), need("zone", h.Zone))
		if !slices.Contains(Severities, h.Severity) {
			errs = append(errs, bad("defect: severity %q must be one of %s", h.Severity, strings.Join(Severities, ", ")))
		}
	case ActionRepair:
		errs = append(errs, need("cites (the defect repaired)", h.Cites), need("text (what was done)", h.Text))
	case ActionRelease:
		errs = append(errs, need("meaning (of the signature)", h.Meaning))
	case ActionAndonPull, ActionAndonClear, ActionHold:
		errs = append(errs, need("reason", h.Reason))
	case ActionUnhold:
		errs = append(errs, need("reason", h.Reason), need("cites (the hold released)", h.Cites))
	case ActionClassify:
		errs = append(errs, need("code", h.Code))
	case ActionCorrect:
		errs = append(errs, need("cites (the decision corrected)", h.Cites), need("text (the correction)", h.Text))
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// NewHuman builds the envelope of a person's decision h at station,
// about the car vin ("" for none), made at (the web server's clock). Its
// counter, and so its id, is at in Unix nanoseconds unless h.Counter is
// set: the caller makes the event once per submission and republishes
// that same event. It does not validate (Validate does).
func NewHuman(plant, line, station, vin string, h Human, at time.Time) (*Event, error) {
	if h.Counter == 0 {
		h.Counter = uint64(at.UnixNano())
	}
	return NewEvent(plant, line, station, KindHuman, vin, 0, h.Counter, at, at, h)
}
