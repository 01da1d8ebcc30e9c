package schema

import (
	"strconv"
	"time"

	"github.com/keiline/keiline/pipeline/event"
)

// The rows the record's rules (pipeline/rules) derive from events, what
// the record knows of a batch's cars when the batch starts (View), and
// the changes a batch writes (Changes). Reading the view and writing the
// changes are in write.go.

// Visit is a finished station cycle on a car with everything it recorded.
type Visit struct {
	EventID    string
	VIN        string
	Station    string
	Pos        int // the station's place in the line
	Counter    int64
	Result     string
	StartedAt  time.Time // zero when unknown
	FinishedAt time.Time
	Parts      []event.Part
	Joints     []event.Joint
	Tests      []event.Test
	Bad        []event.BadValue
}

// Tightening is one result of a tightening controller filed as a joint
// of the car VIN (the key the car is filed under): the event's data as
// the controller and the agent reported it, made at MadeAt (the event's
// occurred_at).
type Tightening struct {
	EventID, VIN, Station string
	event.Tightening
	MadeAt time.Time
}

// Vehicle is a car's latest known place on the line. VIN is the key the
// car is filed under: its VIN, or its body number under a line's
// body-number identity policy.
type Vehicle struct {
	VIN                    string
	Model, Variant, Colour string
	FirstSeenAt            time.Time
	LastSeenAt             time.Time
	LastStation            string
	LastPos                int
	ShippedAt              time.Time // zero until shipped
}

// Hold puts a car on hold.
type Hold struct {
	VIN, Station, Kind, Reason string
	EventID                    string
	At                         time.Time
	// Item is the joint, test or part a HoldUnknown hold waits for; zero
	// for the other kinds.
	Item Item
}

// Hold kinds.
const (
	// HoldNOK: a NOK cycle; closed by an OK cycle at an optional
	// (rework) station.
	HoldNOK = "nok"
	// HoldRoute: a station skipped, or a cycle out of order; a skip is
	// closed by the skipped station's own cycle arriving late.
	HoldRoute = "route"
	// HoldBadData: a cycle whose result (OK or NOK) could not be read.
	HoldBadData = "bad_data"
	// HoldUnknown: a joint, test or part value keiline could not read
	// (one hold per item); closed by a later cycle of the car that
	// reports the same item with a known value.
	HoldUnknown = "unknown"
	// HoldInterlock: a tightening the controller made while the agent had
	// the tool disabled; closed by an OK cycle at an optional (rework)
	// station.
	HoldInterlock = "interlock"
	// HoldMissing: a class A joint (VDI/VDE 2862) the car has no OK
	// tightening of when its cycle at the joint's station arrives (one
	// hold per joint, its Item the joint); closed by an OK tightening of
	// the joint, however late it arrives, or by a rework cycle that
	// reports the joint OK.
	HoldMissing = "missing"
	// HoldDefect: a defect a person saw (a human defect event); closed by
	// the repair that cites it, or an inspector's signed release.
	HoldDefect = "defect"
	// HoldInspection: a repaired car waiting for an inspector's signed
	// release (opened by the repair, closed by the release).
	HoldInspection = "inspection"
	// HoldManual: a supervisor's hold on the car (one car, or every car
	// of a part lot); closed by the supervisor's release that cites it.
	HoldManual = "manual"
	// HoldSPC: a statistical process control rule break (event.KindSPC)
	// held the cars made since the characteristic's last good point; one
	// hold per car, closed like a NOK hold by an OK cycle at an optional
	// (rework) station.
	HoldSPC = "spc"
)

// QualityHoldKinds are the holds an inspector's signed release closes.
var QualityHoldKinds = []string{HoldNOK, HoldDefect, HoldInspection}

// HumanAction is the row of a person's decision (event.KindHuman): who,
// in which role, at which station, when, what and why.
type HumanAction struct {
	EventID  string
	Action   string
	Station  string
	VIN      string // "" when the action is about no car
	UserID   int64
	User     string
	Role     string
	Reason   string
	Code     string
	Zone     string
	Severity string
	Text     string
	Lot      string
	Meaning  string // the signature's meaning; "" when not signed
	Cites    string
	At       time.Time
}

// Item kinds.
const (
	ItemJoint = "joint"
	ItemTest  = "test"
	ItemPart  = "part"
	// ItemTightening is a joint a tightening controller makes: the name
	// is the line config's joint, the slot its place in the station's
	// list (a NOK tightening's hold: 1).
	ItemTightening = "tightening"
)

// Item names a joint, test or part of a cycle: its kind, its name (the
// joint's or test's name, the part's number; "" when the PLC's value of
// it could not be read) and its slot, its place from 1 in the cycle's
// list of that kind.
type Item struct {
	Kind string `json:"kind"`
	Name string `json:"name,omitempty"`
	Slot int    `json:"slot"`
}

// String is "joint lug_fl_2", or "joint in slot 3" when the name is
// unknown; "" for the zero Item.
func (i Item) String() string {
	switch {
	case i.Kind == "":
		return ""
	case i.Name == "":
		return i.Kind + " in slot " + strconv.Itoa(i.Slot)
	}
	return i.Kind + " " + i.Name
}

// HoldRecord is a hold with its record id and its closing, if any.
type HoldRecord struct {
	Hold
	// ID is the record's id of the hold; 0 for a hold not yet written.
	ID            int64
	ClosedEventID string
	ClosedAt      time.Time
}

// HoldClose closes a hold the record already has (by its ID), naming the
// event that closed it.
type HoldClose struct {
	ID      int64
	VIN     string
	EventID string
	At      time.Time
}

// StationState is a station's state change.
type StationState struct {
	EventID    string
	Station    string
	Counter    int64
	State      string
	FaultCode  int32
	FaultText  string
	Andon      bool
	VinPresent string
	ChangedAt  time.Time
}

// Alarm is an agent's alarm on a station, raised (Active) or cleared.
type Alarm struct {
	EventID string
	Station string
	Counter int64
	Active  bool
	Code    string
	Text    string
	// Cycle is the PLC cycle counter the alarm is about (0: none).
	Cycle int64
	At    time.Time
}

// CarID pairs a body number with a VIN, as the cycle EventID gave them.
type CarID struct {
	Body, VIN, EventID string
	At                 time.Time
}

// PendingCycle is a cycle that gave only a body number not yet paired
// with a VIN (under the line's default identity policy): it is in the
// event log and is derived once a cycle pairs its body number.
type PendingCycle struct {
	EventID, Body, Station string
	At                     time.Time
	// VIN and ResolvedEventID are set once a cycle pairs the body number
	// with a VIN: the car it was filed under and the pairing event.
	VIN, ResolvedEventID string
	ResolvedAt           time.Time
	// Payload is the stored event, as the view loads it.
	Payload []byte
}

// ViewQuery names what a batch of events needs to know: the cars it
// touches (by the key they are filed under), the body numbers it gives
// (their cars are loaded too) and, when it passes the JIS broadcast
// point, the line's suppliers.
type ViewQuery struct {
	Cars, Bodies, Suppliers []string
}

func (q ViewQuery) empty() bool { return len(q.Cars)+len(q.Bodies)+len(q.Suppliers) == 0 }

// View is what the record knows, when a batch starts, of the cars and
// body numbers its events touch.
type View struct {
	// Cars are the known cars by key; a car not in it is new.
	Cars map[string]*CarView
	// Pairs are the VINs each body number of the query was paired with,
	// in pairing order.
	Pairs map[string][]string
	// Pending are the unresolved pending cycles of the query's body
	// numbers, in log order.
	Pending []PendingCycle
	// LastSeq is each supplier's last JIS broadcast number (0: none).
	LastSeq map[string]int64
	// Stored are the events of the batch the log already held (or that
	// the batch held twice), by index in the batch: what the log holds
	// under that id, to tell a redelivery from a conflict.
	Stored map[int]StoredEvent
}

// StoredEvent is an event the log holds: its seq and payload (nil when
// retention removed its month from the log).
type StoredEvent struct {
	Seq     int64
	Payload []byte
}

// CarView is what the record knows of one car.
type CarView struct {
	Vehicle Vehicle
	// Holds are its open holds, in the order they were opened.
	Holds []HoldRecord
	// Gate is its latest quality gate decision, nil when none.
	Gate *GateDecision
	// Broadcasts are the suppliers it has a JIS broadcast from.
	Broadcasts map[string]bool
	// Tightened are the joints (by station and joint name, TightKey) it
	// has a tightening of, true when one of them is OK.
	Tightened map[string]bool
}

// TightKey is the key of a car's joint in CarView.Tightened.
func TightKey(station, joint string) string { return station + "\x00" + joint }

// Changes are the rows a batch of events derives, written by Apply in one
// round: new rows by COPY, updates as one statement per table.
type Changes struct {
	// Vehicles are the cars the batch touched, as they are after it.
	Vehicles []Vehicle
	Visits   []Visit
	// Tightenings are the tightening results filed under cars.
	Tightenings []Tightening
	// Holds are the holds the batch opened, in order; one the batch also
	// closed carries its closing.
	Holds []HoldRecord
	// Closes close holds opened before the batch.
	Closes     []HoldClose
	Gate       []GateDecision
	Broadcasts []event.Broadcast // numbered (Seq)
	States     []StationState
	Alarms     []Alarm
	Humans     []HumanAction
	CarIDs     []CarID
	// Pending are the batch's new pending cycles (one resolved in the
	// same batch carries its resolution); Resolved are earlier pending
	// cycles the batch resolved.
	Pending  []PendingCycle
	Resolved []PendingCycle
}
