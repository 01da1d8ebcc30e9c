// Package event is keiline's event contract: the versioned build event
// envelope and its data (cycles with parts, joints and tests; state
// changes; alarms; tightenings of tightening controllers), the
// deterministic event ids, the subjects and stream names they
// travel on, and the messages of the manifest download and the JIS
// broadcast. It is a leaf: station agents, the tracker and the record all
// import it, and it imports no transport and no database.
package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is the envelope version this code writes and the highest it reads.
const Version = 1

// Event kinds.
const (
	// KindCycle is a finished station cycle with its results.
	KindCycle = "cycle"
	// KindState is a change of a station's state, fault or andon.
	KindState = "state"
	// KindAlarm is the agent's own diagnosis of a station: a cycle it
	// could not accept (and so did not acknowledge), raised or cleared.
	KindAlarm = "alarm"
)

// Kinds are the event kinds this code reads.
var Kinds = []string{KindCycle, KindState, KindAlarm, KindTightening, KindHuman}

// Clocks an event's times come from.
const (
	// ClockPLC: the PLC gave the times (the default when Clock is empty).
	ClockPLC = "plc"
	// ClockAgent: the PLC gives no times, so they are the agent's clock
	// when it read the result (or saw the state change); for a state
	// event without a PLC StateCounter the counter is that clock too, in
	// Unix milliseconds.
	ClockAgent = "agent"
)

// ErrMalformed is wrapped by every Decode error: the message cannot be used
// and goes to the dead-letter subject.
var ErrMalformed = errors.New("malformed event")

// Event is the versioned JSON envelope of every build event.
type Event struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Plant   string `json:"plant"`
	Line    string `json:"line"`
	Station string `json:"station"`
	// VIN is the car's id: under the line's default identity policy a
	// 49 CFR 565 VIN (see IdentityPolicy). Empty when the station gave
	// only a body number the tracker resolves (Body).
	VIN string `json:"vin,omitempty"`
	// Body is the car's body (tracking) number, when the station reports
	// one; the tracker learns the VIN it belongs to from a station that
	// reports both.
	Body       string          `json:"body,omitempty"`
	OccurredAt time.Time       `json:"occurred_at"`
	RecordedAt time.Time       `json:"recorded_at"`
	Data       json.RawMessage `json:"data"`
}

// Cycle is the data of a KindCycle event: one finished station cycle.
type Cycle struct {
	Counter uint32 `json:"counter"`
	// Epoch counts the PLC's counter restarts (0 before the first); it is
	// part of the event id from 1 on.
	Epoch uint32 `json:"epoch,omitempty"`
	// Result is OK or NOK; empty when the PLC's verdict could not be read
	// (see Bad): unknown, never OK.
	Result    string    `json:"result"`
	Model     string    `json:"model"`
	Variant   string    `json:"variant"`
	Colour    string    `json:"colour"`
	StartedAt time.Time `json:"started_at"`
	// Clock is ClockAgent when the PLC gives no cycle times and
	// StartedAt and the event's OccurredAt are the agent's clock;
	// empty (ClockPLC) otherwise.
	Clock  string     `json:"clock,omitempty"`
	Parts  []Part     `json:"parts"`
	Joints []Joint    `json:"joints"`
	Tests  []Test     `json:"tests"`
	Bad    []BadValue `json:"bad,omitempty"`
}

// Part is one installed part. A field the PLC gave with bad quality is
// empty and named in the cycle's Bad list.
type Part struct {
	PartNumber string `json:"part_number"`
	Serial     string `json:"serial"`
	Lot        string `json:"lot"`
	Supplier   string `json:"supplier"`
}

// Joint is one tightened joint. A nil value is unknown: the PLC's value
// could not be read or converted (the cycle's Bad list says which and why)
// or the station's tag map has none (absent). Unknown is never 0 and never
// OK.
type Joint struct {
	Joint    string   `json:"joint"`
	Tool     string   `json:"tool"`
	TorqueNm *float64 `json:"torque_nm"`
	AngleDeg *float64 `json:"angle_deg"`
	OK       *bool    `json:"ok"`
}

// Test is one measured test value; nil values are unknown, as in Joint.
type Test struct {
	Name  string   `json:"name"`
	Value *float64 `json:"value"`
	Unit  string   `json:"unit"`
	Low   *float64 `json:"low"`
	High  *float64 `json:"high"`
	OK    *bool    `json:"ok"`
}

// Verdict is "OK", "NOK" or "unknown" for a joint's or test's OK value.
func Verdict(ok *bool) string {
	switch {
	case ok == nil:
		return "unknown"
	case *ok:
		return "OK"
	}
	return "NOK"
}

// BadValue reports a PLC tag whose value could not be used: bad OPC UA
// quality, the wrong type or a failed conversion. The value is never used
// as data.
type BadValue struct {
	Tag    string `json:"tag"`
	NodeID string `json:"node_id"`
	Reason string `json:"reason"`
}

// State is the data of a KindState event.
type State struct {
	// Counter is the PLC's StateCounter, or with Clock ClockAgent the
	// agent's clock (Unix milliseconds) when it saw the change.
	Counter uint64 `json:"counter"`
	// Epoch counts the restarts of the PLC's StateCounter (0 before the
	// first); it is part of the event id from 1 on, as a cycle's.
	Epoch      uint32 `json:"epoch,omitempty"`
	Clock      string `json:"clock,omitempty"`
	State      string `json:"state"`
	FaultCode  int32  `json:"fault_code"`
	FaultText  string `json:"fault_text"`
	Andon      bool   `json:"andon"`
	VinPresent string `json:"vin_present"`
}

// Alarm is the data of a KindAlarm event: the agent's diagnosis of a
// station, raised (Active) or cleared. Counter is the agent's clock (Unix
// milliseconds) when it raised or cleared the alarm.
type Alarm struct {
	Counter uint64 `json:"counter"`
	Active  bool   `json:"active"`
	// Code is one of the Alarm codes; Text says what is wrong with which
	// tag and node, and what fixes it.
	Code string `json:"code"`
	Text string `json:"text"`
	// Cycle is the PLC cycle counter the alarm is about (0: none).
	Cycle uint32 `json:"cycle,omitempty"`
	// Controller and TighteningID name the tightening controller and the
	// tightening an alarm is about (empty and 0: none).
	Controller   string `json:"controller,omitempty"`
	TighteningID uint32 `json:"tightening_id,omitempty"`
}

// Alarm codes.
const (
	// AlarmRefused: the agent read a cycle the record would not accept (an
	// invalid car identity, an impossible value) and did not acknowledge
	// it: it stays in the PLC until the PLC or the line config is fixed.
	AlarmRefused = "refused"
	// AlarmControllerDown: the agent has no link to a tightening
	// controller (unreachable, or another client holds it: MID 0004
	// error 96). Its results wait in the controller.
	AlarmControllerDown = "controller_down"
	// AlarmWhileDisabled: a controller reported a tightening it made while
	// the agent had its tool disabled (the interlock); the tightening is
	// recorded, flagged.
	AlarmWhileDisabled = "tightening_while_disabled"
	// AlarmTighteningLost: a controller no longer keeps tightenings it made
	// while the agent was away; they cannot be recorded.
	AlarmTighteningLost = "tightening_lost"
	// AlarmWrongCar: the car in the station is not one a controller's pset
	// map knows (its VIN names no build of the line): the tool stays
	// disabled while it is there.
	AlarmWrongCar = "wrong_car"
	// AlarmToolCommand: a controller refused a command of the interlock
	// (VIN download, pset selection, tool enable or disable).
	AlarmToolCommand = "tool_command"
)

// Station states a PLC may report.
var States = []string{"running", "blocked", "starved", "fault", "maintenance"}

// EventID returns the deterministic id of the event of kind made from the
// station's counter (and the counter's epoch, from 1 on): the same cycle
// always gets the same id, so a republished event is recognised as a
// duplicate.
func EventID(plant, line, station, kind string, epoch uint32, counter uint64) string {
	id := plant + "." + line + "." + station + "." + kind + "."
	if epoch > 0 {
		id += "e" + strconv.FormatUint(uint64(epoch), 10) + "."
	}
	return id + strconv.FormatUint(counter, 10)
}

// Decode parses and checks one message body under the default identity
// policy (IdentityVIN). Every error wraps ErrMalformed and names the field
// that is wrong.
func Decode(b []byte) (*Event, error) { return DecodeFor(b, IdentityVIN) }

// DecodeFor parses and checks one message body under the line's identity
// policy. Every error wraps ErrMalformed and names the field that is
// wrong.
func DecodeFor(b []byte, p IdentityPolicy) (*Event, error) {
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := ev.ValidateFor(p); err != nil {
		return nil, err
	}
	return &ev, nil
}

// Validate checks the envelope under the default identity policy.
func (ev *Event) Validate() error { return ev.ValidateFor(IdentityVIN) }

// ValidateFor checks the envelope's fields and its data under the line's
// identity policy p. It does not check that the station is known to the
// line: that is the tracker's question. The agent calls it before it
// acknowledges a cycle, the tracker when it consumes one: what one
// refuses, the other does too.
func (ev *Event) ValidateFor(p IdentityPolicy) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: event %q: %s", ErrMalformed, ev.ID, fmt.Sprintf(format, a...))
	}
	if ev.Version < 1 || ev.Version > Version {
		return bad("version %d not supported (1..%d)", ev.Version, Version)
	}
	for name, v := range map[string]string{"plant": ev.Plant, "line": ev.Line, "station": ev.Station} {
		if v == "" || strings.ContainsAny(v, ".*> \t\r\n") {
			return bad("%s %q must be a non-empty subject token", name, v)
		}
	}
	if ev.OccurredAt.IsZero() {
		return bad("occurred_at missing")
	}
	if len(ev.Data) == 0 || string(ev.Data) == "null" {
		return bad("data missing")
	}
	switch ev.Kind {
	case KindCycle:
		c, err := ev.Cycle()
		if err != nil {
			return err
		}
		if want := EventID(ev.Plant, ev.Line, ev.Station, ev.Kind, c.Epoch, uint64(c.Counter)); ev.ID != want {
			return bad("id does not match counter %d (want %q)", c.Counter, want)
		}
		if err := p.Check(ev.VIN, ev.Body); err != nil {
			return bad("station %s: %v", ev.Station, err)
		}
		reported := map[string]bool{}
		for _, b := range c.Bad {
			reported[b.Tag] = true
		}
		// A result the PLC gave with bad quality is reported in Bad and
		// left empty (unknown); anything else must be OK or NOK.
		if c.Result != "OK" && c.Result != "NOK" && !(c.Result == "" && reported["Result.Status"]) {
			return bad("result %q must be OK or NOK", c.Result)
		}
		if c.Clock != "" && c.Clock != ClockPLC && c.Clock != ClockAgent {
			return bad("clock %q must be %s or %s", c.Clock, ClockPLC, ClockAgent)
		}
	case KindState:
		s, err := ev.State()
		if err != nil {
			return err
		}
		if want := EventID(ev.Plant, ev.Line, ev.Station, ev.Kind, s.Epoch, s.Counter); ev.ID != want {
			return bad("id does not match counter %d (want %q)", s.Counter, want)
		}
	case KindAlarm:
		a, err := ev.Alarm()
		if err != nil {
			return err
		}
		if want := EventID(ev.Plant, ev.Line, ev.Station, ev.Kind, 0, a.Counter); ev.ID != want {
			return bad("id does not match counter %d (want %q)", a.Counter, want)
		}
		if a.Code == "" {
			return bad("alarm code missing")
		}
	case KindTightening:
		if err := ev.validateTightening(p, bad); err != nil {
			return err
		}
	case KindHuman:
		if err := ev.validateHuman(p, bad); err != nil {
			return err
		}
	case KindConflict:
		return bad("kind %s is the tracker's own record of a conflict: no station publishes it", KindConflict)
	case KindRetention:
		return bad("kind %s is keiline's own record of removed history: no station publishes it", KindRetention)
	case KindSPC:
		return bad("kind %s is the tracker's own record of an SPC rule break: no station publishes it", KindSPC)
	default:
		return bad("kind %q unknown (%s)", ev.Kind, strings.Join(Kinds, ", "))
	}
	return nil
}

// Cycle decodes the data of a cycle event.
func (ev *Event) Cycle() (*Cycle, error) {
	var c Cycle
	if err := json.Unmarshal(ev.Data, &c); err != nil {
		return nil, fmt.Errorf("%w: event %q: cycle data: %v", ErrMalformed, ev.ID, err)
	}
	return &c, nil
}

// Alarm decodes the data of an alarm event.
func (ev *Event) Alarm() (*Alarm, error) {
	var a Alarm
	if err := json.Unmarshal(ev.Data, &a); err != nil {
		return nil, fmt.Errorf("%w: event %q: alarm data: %v", ErrMalformed, ev.ID, err)
	}
	return &a, nil
}

// State decodes the data of a state event.
func (ev *Event) State() (*State, error) {
	var s State
	if err := json.Unmarshal(ev.Data, &s); err != nil {
		return nil, fmt.Errorf("%w: event %q: state data: %v", ErrMalformed, ev.ID, err)
	}
	return &s, nil
}

// NewEvent builds an envelope around data, with its deterministic id from
// the station's counter and its epoch.
func NewEvent(plant, line, station, kind, vin string, epoch uint32, counter uint64, occurred, recorded time.Time, data any) (*Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("station %s: encode %s %d: %w", station, kind, counter, err)
	}
	return &Event{
		Version:    Version,
		ID:         EventID(plant, line, station, kind, epoch, counter),
		Kind:       kind,
		Plant:      plant,
		Line:       line,
		Station:    station,
		VIN:        vin,
		OccurredAt: occurred.UTC(),
		RecordedAt: recorded.UTC(),
		Data:       b,
	}, nil
}
