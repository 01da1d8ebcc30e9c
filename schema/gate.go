package schema

import "time"

// GateDecision is the quality gate's verdict on a car that reached it:
// released only when the car had no open hold, else blocked. The rules
// (pipeline/rules) decide it; the record keeps it.
type GateDecision struct {
	EventID   string    `json:"event_id"`
	VIN       string    `json:"vin"`
	Station   string    `json:"station"`
	Released  bool      `json:"released"`
	OpenHolds int       `json:"open_holds"`
	Reason    string    `json:"reason,omitempty"` // the open holds, when blocked
	DecidedAt time.Time `json:"decided_at"`
	// Kind is GateKindGate for the gate's own decision on its cycle, or
	// GateKindRelease for a release recorded when a later event closed
	// the holds that had blocked the car.
	Kind string `json:"kind"`
}

// Kinds of gate decisions.
const (
	GateKindGate    = "gate"
	GateKindRelease = "release"
)
