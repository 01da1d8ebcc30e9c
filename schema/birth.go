package schema

import (
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/keiline/keiline/pipeline/event"
)

// BirthRecord is a car's full record in the form people and machines read
// it (trace vin --json, the HTTP API, the birth certificate): where it is
// now, its route with times and everything each cycle recorded, its
// defects and what rework redid, its holds and quality gate decisions, and
// for every line the event behind it and that event's place in the
// hash-chained log.
type BirthRecord struct {
	CarStatus
	FirstSeenAt time.Time    `json:"first_seen_at"`
	Visits      []BirthVisit `json:"visits"`
	// Tightenings are the car's tightening controller results, each a
	// joint of the car, in the order they were made.
	Tightenings []BirthTightening `json:"tightenings"`
	Defects     []Defect          `json:"defects"`
	Holds       []BirthHold       `json:"holds"`
	Gate        []GateDecision    `json:"gate"`
	// Decisions are people's decisions about the car (issue 13): who, in
	// which role, where, when, what and why, oldest first.
	Decisions []BirthDecision  `json:"decisions"`
	Released  bool             `json:"released"` // the latest gate decision released the car
	Events    map[string]Chain `json:"-"`
}

// Chain is an event's place in the log as shown to people: sequence number
// and hash in hex.
type Chain struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// BirthVisit is one station cycle on the car with what it recorded.
type BirthVisit struct {
	EventID    string           `json:"event_id"`
	Seq        int64            `json:"seq"`
	Hash       string           `json:"hash"`
	Station    string           `json:"station"`
	Result     string           `json:"result"`
	StartedAt  *time.Time       `json:"started_at,omitempty"`
	FinishedAt time.Time        `json:"finished_at"`
	Parts      []event.Part     `json:"parts"`
	Joints     []event.Joint    `json:"joints"`
	Tests      []event.Test     `json:"tests"`
	Bad        []event.BadValue `json:"bad_values,omitempty"`
	// Rework is true for a cycle that closed holds: the rework bay's.
	Rework bool `json:"rework,omitempty"`
}

// BirthTightening is one tightening result with its event's place in the
// log.
type BirthTightening struct {
	TighteningRecord
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// BirthHold is a hold with its opening and closing events.
type BirthHold struct {
	Station string `json:"station"`
	Kind    string `json:"kind"`
	Reason  string `json:"reason"`
	// Item is the joint, test or part an unknown hold waits for.
	Item          *Item      `json:"item,omitempty"`
	OpenedEventID string     `json:"opened_event_id"`
	OpenedAt      time.Time  `json:"opened_at"`
	ClosedEventID string     `json:"closed_event_id,omitempty"`
	ClosedAt      *time.Time `json:"closed_at,omitempty"`
}

// Defect is one NOK joint or test (or an unusable PLC value) on the car,
// with the rework that redid it, if any.
type Defect struct {
	Station string    `json:"station"`
	EventID string    `json:"event_id"`
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"` // joint, test or bad_value
	Name    string    `json:"name"`
	Detail  string    `json:"detail"`
	// ReworkEventID is the later cycle that redid the joint or test with
	// an OK result; ReworkStation and ReworkDetail say where and how
	// (tool and torque, or the new value). Empty while not reworked.
	ReworkEventID string `json:"rework_event_id,omitempty"`
	ReworkStation string `json:"rework_station,omitempty"`
	ReworkDetail  string `json:"rework_detail,omitempty"`
}

// BirthDecision is a person's decision about the car with its place in
// the log.
type BirthDecision struct {
	EventID  string    `json:"event_id"`
	Seq      int64     `json:"seq"`
	Hash     string    `json:"hash"`
	Action   string    `json:"action"`
	Station  string    `json:"station"`
	At       time.Time `json:"at"`
	UserID   int64     `json:"user_id"`
	User     string    `json:"user"`
	Role     string    `json:"role"`
	Reason   string    `json:"reason,omitempty"`
	Code     string    `json:"code,omitempty"`
	Zone     string    `json:"zone,omitempty"`
	Severity string    `json:"severity,omitempty"`
	Text     string    `json:"text,omitempty"`
	Lot      string    `json:"lot,omitempty"`
	// Meaning is what the person's signature meant; "" when not signed.
	Meaning string `json:"signature_meaning,omitempty"`
	Cites   string `json:"cites,omitempty"`
}

// Why is the decision's reason in words: its reason, its text (a defect's
// description, what a repair did), its code, zone and severity.
func (d BirthDecision) Why() string {
	var parts []string
	if d.Code != "" {
		s := d.Code
		if d.Zone != "" {
			s += " at " + d.Zone
		}
		if d.Severity != "" {
			s += " (" + d.Severity + ")"
		}
		parts = append(parts, s)
	}
	for _, p := range []string{d.Text, d.Reason} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if d.Lot != "" {
		parts = append(parts, "lot "+d.Lot)
	}
	if d.Cites != "" {
		parts = append(parts, "cites "+d.Cites)
	}
	return strings.Join(parts, "; ")
}

// Defect kinds.
const (
	DefectJoint    = "joint"
	DefectTest     = "test"
	DefectBadValue = "bad_value"
	// DefectTightening is a NOK result of a tightening controller,
	// redone by a later OK tightening of the joint or a rework cycle that
	// reports it OK.
	DefectTightening = "tightening"
)

// tighteningDefects lists the NOK tightenings (in the order made), each
// matched with the first later OK tightening of the same joint at the
// station, else the first later visit whose joint of that name is OK.
func tighteningDefects(ts []Tightening, visits []Visit) []Defect {
	var out []Defect
	for i, t := range ts {
		if t.Result != event.StatusNOK {
			continue
		}
		d := Defect{Station: t.Station, EventID: t.EventID, At: t.MadeAt, Kind: DefectTightening, Name: t.Joint, Detail: describeTightening(t)}
		for _, u := range ts[i+1:] {
			if t.Joint != "" && u.Station == t.Station && u.Joint == t.Joint && u.Result == event.StatusOK {
				d.ReworkEventID, d.ReworkStation, d.ReworkDetail = u.EventID, u.Station, describeTightening(u)
				break
			}
		}
	redo:
		for _, w := range visits {
			if d.ReworkEventID != "" || !w.FinishedAt.After(t.MadeAt) {
				continue
			}
			for _, r := range w.Joints {
				if t.Joint != "" && r.Joint == t.Joint && event.IsOK(r.OK) {
					d.ReworkEventID, d.ReworkStation, d.ReworkDetail = w.EventID, w.Station, r.Describe()
					break redo
				}
			}
		}
		out = append(out, d)
	}
	return out
}

// describeTightening is "C04-NR1 #4711 pset 2: 91.25 N·m (low) 44.5° (OK)".
func describeTightening(t Tightening) string {
	f := func(v *float64, unit, status string) string {
		if v == nil {
			return "unknown (" + status + ")"
		}
		return strconv.FormatFloat(*v, 'f', 2, 64) + unit + " (" + status + ")"
	}
	return t.Controller + " #" + strconv.FormatUint(uint64(t.TighteningID), 10) + " pset " + strconv.Itoa(t.Pset) + ": " +
		f(t.TorqueNm, " N·m", t.TorqueStatus) + " " + f(t.AngleDeg, "°", t.AngleStatus)
}

// Birth returns the trace as a birth record.
func (c *CarTrace) Birth() BirthRecord {
	v := c.Vehicle
	b := BirthRecord{CarStatus: c.Status, FirstSeenAt: v.FirstSeenAt, Visits: []BirthVisit{}, Tightenings: []BirthTightening{}, Defects: []Defect{},
		Holds: []BirthHold{}, Gate: c.Gate, Decisions: []BirthDecision{}, Events: map[string]Chain{}}
	if b.Gate == nil {
		b.Gate = []GateDecision{}
	}
	closers := map[string]bool{}
	for _, h := range c.Holds {
		bh := BirthHold{Station: h.Station, Kind: h.Kind, Reason: h.Reason, OpenedEventID: h.EventID, OpenedAt: h.At, ClosedEventID: h.ClosedEventID}
		if h.Item.Kind != "" {
			it := h.Item
			bh.Item = &it
		}
		if !h.ClosedAt.IsZero() {
			t := h.ClosedAt
			bh.ClosedAt = &t
			closers[h.ClosedEventID] = true
		}
		b.Holds = append(b.Holds, bh)
	}
	for id, r := range c.Chain {
		b.Events[id] = Chain{Seq: r.Seq, Hash: hex.EncodeToString(r.Hash)}
	}
	for _, x := range c.Visits {
		bv := BirthVisit{EventID: x.EventID, Station: x.Station, Result: x.Result, FinishedAt: x.FinishedAt,
			Parts: x.Parts, Joints: x.Joints, Tests: x.Tests, Bad: x.Bad, Rework: closers[x.EventID]}
		if !x.StartedAt.IsZero() {
			t := x.StartedAt
			bv.StartedAt = &t
		}
		if ch, ok := b.Events[x.EventID]; ok {
			bv.Seq, bv.Hash = ch.Seq, ch.Hash
		}
		b.Visits = append(b.Visits, bv)
	}
	for _, t := range c.Tightenings {
		bt := BirthTightening{TighteningRecord: t.Record()}
		if ch, ok := b.Events[t.EventID]; ok {
			bt.Seq, bt.Hash = ch.Seq, ch.Hash
		}
		b.Tightenings = append(b.Tightenings, bt)
	}
	for _, h := range c.Humans {
		d := BirthDecision{EventID: h.EventID, Action: h.Action, Station: h.Station, At: h.At, UserID: h.UserID, User: h.User, Role: h.Role,
			Reason: h.Reason, Code: h.Code, Zone: h.Zone, Severity: h.Severity, Text: h.Text, Lot: h.Lot, Meaning: h.Meaning, Cites: h.Cites}
		if ch, ok := b.Events[h.EventID]; ok {
			d.Seq, d.Hash = ch.Seq, ch.Hash
		}
		b.Decisions = append(b.Decisions, d)
	}
	b.Defects = append(defects(c.Visits), tighteningDefects(c.Tightenings, c.Visits)...)
	if n := len(b.Gate); n > 0 {
		b.Released = b.Gate[n-1].Released
	}
	return b
}

// defects lists the NOK joints and tests and the bad values of visits (in
// visit order), each matched with the first later visit that made the
// same joint or test OK.
func defects(visits []Visit) []Defect {
	out := []Defect{}
	for i, v := range visits {
		for _, j := range v.Joints {
			if event.IsOK(j.OK) {
				continue
			}
			d := Defect{Station: v.Station, EventID: v.EventID, At: v.FinishedAt, Kind: DefectJoint, Name: j.Joint, Detail: j.Describe()}
		redo:
			for _, w := range visits[i+1:] {
				for _, r := range w.Joints {
					if r.Joint == j.Joint && event.IsOK(r.OK) {
						d.ReworkEventID, d.ReworkStation = w.EventID, w.Station
						d.ReworkDetail = r.Describe()
						break redo
					}
				}
			}
			out = append(out, d)
		}
		for _, x := range v.Tests {
			if event.IsOK(x.OK) {
				continue
			}
			d := Defect{Station: v.Station, EventID: v.EventID, At: v.FinishedAt, Kind: DefectTest, Name: x.Name, Detail: x.Describe()}
		retest:
			for _, w := range visits[i+1:] {
				for _, r := range w.Tests {
					if r.Name == x.Name && event.IsOK(r.OK) {
						d.ReworkEventID, d.ReworkStation = w.EventID, w.Station
						d.ReworkDetail = r.Describe()
						break retest
					}
				}
			}
			out = append(out, d)
		}
		for _, bv := range v.Bad {
			out = append(out, Defect{Station: v.Station, EventID: v.EventID, At: v.FinishedAt, Kind: DefectBadValue, Name: bv.Tag,
				Detail: bv.NodeID + ": " + bv.Reason})
		}
	}
	return out
}
