// Package event is keiline's event contract: the versioned build event
// envelope and its data (cycles with parts, joints and tests; state
// changes), the deterministic event ids, the subjects and stream names they
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

	"github.com/keiline/keiline/internal/vin"
)

// Version is the envelope version this code writes and the highest it reads.
const Version = 1

// Event kinds.
const (
	// KindCycle is a finished station cycle with its results.
	KindCycle = "cycle"
	// KindState is a change of a station's state, fault or andon.
	KindState = "state"
)

// ErrMalformed is wrapped by every Decode error: the message cannot be used
// and goes to the dead-letter subject.
var ErrMalformed = errors.New("malformed event")

// Event is the versioned JSON envelope of every build event.
type Event struct {
	Version    int             `json:"version"`
	ID         string          `json:"id"`
	Kind       string          `json:"kind"`
	Plant      string          `json:"plant"`
	Line       string          `json:"line"`
	Station    string          `json:"station"`
	VIN        string          `json:"vin,omitempty"`
	OccurredAt time.Time       `json:"occurred_at"`
	RecordedAt time.Time       `json:"recorded_at"`
	Data       json.RawMessage `json:"data"`
}

// Cycle is the data of a KindCycle event: one finished station cycle.
type Cycle struct {
	Counter   uint32     `json:"counter"`
	Result    string     `json:"result"` // OK or NOK
	Model     string     `json:"model"`
	Variant   string     `json:"variant"`
	Colour    string     `json:"colour"`
	StartedAt time.Time  `json:"started_at"`
	Parts     []Part     `json:"parts"`
	Joints    []Joint    `json:"joints"`
	Tests     []Test     `json:"tests"`
	Bad       []BadValue `json:"bad,omitempty"`
}

// Part is one installed part.
type Part struct {
	PartNumber string `json:"part_number"`
	Serial     string `json:"serial"`
	Lot        string `json:"lot"`
	Supplier   string `json:"supplier"`
}

// Joint is one tightened joint.
type Joint struct {
	Joint    string  `json:"joint"`
	Tool     string  `json:"tool"`
	TorqueNm float64 `json:"torque_nm"`
	AngleDeg float64 `json:"angle_deg"`
	OK       bool    `json:"ok"`
}

// Test is one measured test value.
type Test struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
	OK    bool    `json:"ok"`
}

// BadValue reports a PLC tag whose value could not be used: bad OPC UA
// quality or the wrong type. The value is never used as data.
type BadValue struct {
	Tag    string `json:"tag"`
	NodeID string `json:"node_id"`
	Reason string `json:"reason"`
}

// State is the data of a KindState event.
type State struct {
	Counter    uint32 `json:"counter"`
	State      string `json:"state"`
	FaultCode  int32  `json:"fault_code"`
	FaultText  string `json:"fault_text"`
	Andon      bool   `json:"andon"`
	VinPresent string `json:"vin_present"`
}

// Station states a PLC may report.
var States = []string{"running", "blocked", "starved", "fault", "maintenance"}

// EventID returns the deterministic id of the event of kind made from the
// station's PLC counter: the same cycle always gets the same id, so a
// republished event is recognised as a duplicate.
func EventID(plant, line, station, kind string, counter uint32) string {
	return plant + "." + line + "." + station + "." + kind + "." + strconv.FormatUint(uint64(counter), 10)
}

// Decode parses and checks one message body. Every error wraps ErrMalformed
// and names the field that is wrong.
func Decode(b []byte) (*Event, error) {
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	return &ev, nil
}

// Validate checks the envelope's fields. It does not check that the station
// is known to the line: that is the tracker's question.
func (ev *Event) Validate() error {
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
		if want := EventID(ev.Plant, ev.Line, ev.Station, ev.Kind, c.Counter); ev.ID != want {
			return bad("id does not match counter %d (want %q)", c.Counter, want)
		}
		reported := map[string]bool{}
		for _, b := range c.Bad {
			reported[b.Tag] = true
		}
		// A VIN or result the PLC gave with bad quality is reported in
		// Bad and left empty; anything else must be valid.
		if !(ev.VIN == "" && reported["Result.Vin"]) {
			if err := vin.Validate(ev.VIN); err != nil {
				return bad("station %s: %v", ev.Station, err)
			}
		}
		if c.Result != "OK" && c.Result != "NOK" && !(c.Result == "" && reported["Result.Status"]) {
			return bad("result %q must be OK or NOK", c.Result)
		}
	case KindState:
		s, err := ev.State()
		if err != nil {
			return err
		}
		if want := EventID(ev.Plant, ev.Line, ev.Station, ev.Kind, s.Counter); ev.ID != want {
			return bad("id does not match counter %d (want %q)", s.Counter, want)
		}
	default:
		return bad("kind %q unknown (cycle, state)", ev.Kind)
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

// State decodes the data of a state event.
func (ev *Event) State() (*State, error) {
	var s State
	if err := json.Unmarshal(ev.Data, &s); err != nil {
		return nil, fmt.Errorf("%w: event %q: state data: %v", ErrMalformed, ev.ID, err)
	}
	return &s, nil
}

// NewEvent builds an envelope around data, with its deterministic id.
func NewEvent(plant, line, station, kind, vin string, counter uint32, occurred, recorded time.Time, data any) (*Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("station %s: encode %s %d: %w", station, kind, counter, err)
	}
	return &Event{
		Version:    Version,
		ID:         EventID(plant, line, station, kind, counter),
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
