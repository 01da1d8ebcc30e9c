package event

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// KindSPC is keiline's own record of a statistical process control rule
// break (issue 17): a new value of a characteristic with frozen control
// limits that trips one of its run rules. The tracker makes it (NewSPCBreak)
// in the transaction that records the value, so the break is in the hash
// chain beside the value; it raises the station's alarm (AlarmSPC) and,
// where the line config says so, holds the cars made since the last good
// point. No agent may publish this kind: ValidateFor refuses it.
const KindSPC = "spc"

// AlarmSPC is the alarm code a rule break raises on its station.
const AlarmSPC = "spc"

// SPCBreak is the data of a KindSPC event. Active and Code are always
// true and AlarmSPC: the break reads as an alarm to whoever reads alarms.
type SPCBreak struct {
	// Counter is the time of the point that tripped the rule (Unix
	// milliseconds): the alarm's counter.
	Counter uint64 `json:"counter"`
	Active  bool   `json:"active"`
	Code    string `json:"code"`
	// Kind, Name, Model and Variant name the characteristic (its station
	// is the event's): torque, angle or test; the joint or test name; the
	// model and variant when it is one model's values.
	Kind    string `json:"char_kind"`
	Name    string `json:"name"`
	Model   string `json:"model,omitempty"`
	Variant string `json:"variant,omitempty"`
	// Rule is the spc rule id (nelson2, we1, …) and Part the chart it
	// tripped on (location, dispersion).
	Rule string `json:"rule"`
	Part string `json:"part"`
	// PointEventID and PointVIN are the event and the car of the value
	// that tripped the rule; Value the plotted value (the value, or the
	// subgroup's mean, range or standard deviation).
	PointEventID string  `json:"point_event_id"`
	PointVIN     string  `json:"point_vin"`
	Value        float64 `json:"value"`
	// Points is how many plotted points make the rule's pattern, the
	// point that tripped it the last; FirstVIN is the car of the
	// pattern's first value (the first after the last good point).
	Points   int    `json:"points"`
	FirstVIN string `json:"first_vin"`
	// LimitsVersion is the version of the frozen limits checked against.
	LimitsVersion int `json:"limits_version"`
	// OnBreak is what the line config says a break does: alarm, andon or
	// hold.
	OnBreak string `json:"on_break"`
	// Hold are the cars the break holds (OnBreak hold): the cars of the
	// pattern's values, made since the last good point, that the record
	// knows.
	Hold []string `json:"hold,omitempty"`
	// Text is the alarm text an operator reads.
	Text string `json:"text"`
}

// SPCBreakID is the id of the break of rule on part of characteristic
// char (its kind, station, name, model and variant, joined) at the value
// recorded by event pointID: the same value checked twice (a batch
// retried) is one break.
func SPCBreakID(pointID, char, rule, part string) string {
	h := sha256.Sum256([]byte(char + "\x00" + rule + "\x00" + part))
	return pointID + "." + KindSPC + "." + hex.EncodeToString(h[:8])
}

// NewSPCBreak is the tracker's event for break b of a characteristic at
// station (char names it for the id, see SPCBreakID), at the time at of
// the value that tripped it; now is the tracker's clock. It fills Counter,
// Active, Code and, when empty, Text.
func NewSPCBreak(plant, line, station, char string, b SPCBreak, at, now time.Time) (*Event, error) {
	b.Counter, b.Active, b.Code = uint64(at.UnixMilli()), true, AlarmSPC
	if b.Text == "" {
		b.Text = b.describe(station)
	}
	data, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("spc break of %s at %s: %w", char, b.PointEventID, err)
	}
	return &Event{Version: Version, ID: SPCBreakID(b.PointEventID, char, b.Rule, b.Part), Kind: KindSPC, Plant: plant, Line: line,
		Station: station, VIN: b.PointVIN, OccurredAt: at.UTC(), RecordedAt: now.UTC(), Data: data}, nil
}

// describe is the alarm text of b: the characteristic, the rule, the
// point and what the break does.
func (b SPCBreak) describe(station string) string {
	char := b.Kind + " " + station + " " + b.Name
	if b.Model != "" {
		char += " " + b.Model
	}
	if b.Variant != "" {
		char += " " + b.Variant
	}
	chart := ""
	if b.Part == "dispersion" {
		chart = " (dispersion chart)"
	}
	s := fmt.Sprintf("SPC %s: %s broken%s at %s (value %s, event %s), %d points from %s; limits v%d",
		char, b.Rule, chart, b.PointVIN, strconv.FormatFloat(b.Value, 'g', 6, 64), b.PointEventID, b.Points, b.FirstVIN, b.LimitsVersion)
	switch {
	case b.OnBreak == "hold" && len(b.Hold) > 0:
		s += fmt.Sprintf("; %d cars held since the last good point", len(b.Hold))
	case b.OnBreak == "andon":
		s += "; andon"
	}
	return s
}

// SPCBreak decodes the data of an spc event.
func (ev *Event) SPCBreak() (*SPCBreak, error) {
	var b SPCBreak
	if err := json.Unmarshal(ev.Data, &b); err != nil {
		return nil, fmt.Errorf("%w: event %q: spc data: %v", ErrMalformed, ev.ID, err)
	}
	return &b, nil
}
