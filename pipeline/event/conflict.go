package event

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// KindConflict is the tracker's own record of a conflict: an event whose
// id the log already holds arrived with a different content (a PLC whose
// counter restarted without the agent noticing, a replaced PC that lost
// its counter epochs, a forgery). The log keeps the first event; the
// conflicting message is kept in the conflict's data, in the hash chain,
// and raises the station's alarm. No agent may publish this kind: the
// tracker makes it (NewConflict), and ValidateFor refuses it.
const KindConflict = "conflict"

// AlarmConflict is the alarm code a conflict raises on its station.
const AlarmConflict = "conflict"

// Conflict is the data of a KindConflict event.
type Conflict struct {
	// Counter is the tracker's clock (Unix milliseconds) when it found
	// the conflict: the alarm's counter.
	Counter uint64 `json:"counter"`
	// EventID is the id both messages claim; StoredSeq the event log seq
	// of the one the record holds.
	EventID   string `json:"event_id"`
	StoredSeq int64  `json:"stored_seq"`
	// Differs names what differs from the stored event (envelope fields,
	// data.<key>).
	Differs []string `json:"differs"`
	// Payload is the conflicting message body exactly as received.
	Payload []byte `json:"payload"`
	// Text is the alarm text an operator reads.
	Text string `json:"text"`
}

// ConflictID is the id of the conflict of message payload with event id:
// the same conflicting message found twice (a redelivery) is one conflict.
func ConflictID(id string, payload []byte) string {
	h := sha256.Sum256(payload)
	return id + "." + KindConflict + "." + hex.EncodeToString(h[:8])
}

// NewConflict is the tracker's conflict event for payload, a message that
// claims the id of ev, which the log holds at storedSeq with different
// content (differs, from Differs). It is filed under ev's station and
// car, and occurs when the tracker found it (now, the tracker's clock).
func NewConflict(ev *Event, storedSeq int64, payload []byte, differs []string, now time.Time) (*Event, error) {
	c := &Conflict{Counter: uint64(now.UnixMilli()), EventID: ev.ID, StoredSeq: storedSeq, Differs: differs, Payload: payload,
		Text: fmt.Sprintf("event %s arrived again with a different %s than the one recorded at seq %d: kept as a conflict, the record holds the first; a PLC counter that restarted without a new epoch, a replaced agent PC, or a forgery — check the station",
			ev.ID, strings.Join(differs, ", "), storedSeq)}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("conflict of %s: %w", ev.ID, err)
	}
	return &Event{Version: Version, ID: ConflictID(ev.ID, payload), Kind: KindConflict, Plant: ev.Plant, Line: ev.Line,
		Station: ev.Station, VIN: ev.VIN, OccurredAt: now.UTC(), RecordedAt: now.UTC(), Data: b}, nil
}

// Conflict decodes the data of a conflict event.
func (ev *Event) Conflict() (*Conflict, error) {
	var c Conflict
	if err := json.Unmarshal(ev.Data, &c); err != nil {
		return nil, fmt.Errorf("%w: event %q: conflict data: %v", ErrMalformed, ev.ID, err)
	}
	return &c, nil
}

// Differs returns what differs between two message bodies claiming the
// same event id: nil when they are the same occurrence — equal but for
// when the agent sent them (recorded_at), and for a cycle the agent timed
// itself (Clock agent) or a state change, when it first saw it; for a tightening, equal but
// for values one message lacks (a result fetched from the controller's
// memory, MID 0065, has no limits). Bodies that do not decode as events
// differ unless they are equal bytes.
func Differs(stored, got []byte) []string {
	if bytes.Equal(stored, got) {
		return nil
	}
	var a, b Event
	if json.Unmarshal(stored, &a) != nil || json.Unmarshal(got, &b) != nil {
		return []string{"payload"}
	}
	var out []string
	env := []struct {
		name string
		x, y any
	}{{"id", a.ID, b.ID}, {"version", a.Version, b.Version}, {"kind", a.Kind, b.Kind}, {"plant", a.Plant, b.Plant},
		{"line", a.Line, b.Line}, {"station", a.Station, b.Station}, {"vin", a.VIN, b.VIN}, {"body", a.Body, b.Body}}
	for _, f := range env {
		if f.x != f.y {
			out = append(out, f.name)
		}
	}
	var da, db map[string]any
	if json.Unmarshal(a.Data, &da) != nil || json.Unmarshal(b.Data, &db) != nil {
		if !bytes.Equal(a.Data, b.Data) {
			out = append(out, "data")
		}
		return out
	}
	agentClock := a.Kind == KindCycle && da["clock"] == ClockAgent && db["clock"] == ClockAgent
	// A state event's time is always the agent's clock (when it saw the
	// change): the same change published again after an agent restart
	// has another.
	if !agentClock && a.Kind != KindState && !a.OccurredAt.Equal(b.OccurredAt) {
		out = append(out, "occurred_at")
	}
	ignore := map[string]bool{}
	if agentClock {
		ignore["started_at"] = true
	}
	if a.Kind == KindTightening {
		ignore["mid"] = true
	}
	keys := map[string]bool{}
	for k := range da {
		keys[k] = true
	}
	for k := range db {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		x, xok := da[k]
		y, yok := db[k]
		if ignore[k] || reflect.DeepEqual(x, y) {
			continue
		}
		if a.Kind == KindTightening && (!xok || !yok || x == nil || y == nil) {
			continue // known in one message only
		}
		names = append(names, "data."+k)
	}
	slices.Sort(names)
	return append(out, names...)
}
