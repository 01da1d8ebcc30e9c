package event

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// KindTightening is one tightening a tightening controller made and
// reported over the Open Protocol: a joint of the car whose VIN it carries.
const KindTightening = "tightening"

// Statuses of a tightening.
const (
	// StatusOK and StatusNOK are a tightening's verdict (the controller's
	// tightening status) and a batch's.
	StatusOK  = "OK"
	StatusNOK = "NOK"
	// StatusLow and StatusHigh are a value below or above its limits; a
	// value within them is StatusOK.
	StatusLow  = "low"
	StatusHigh = "high"
	// BatchNotUsed: the parameter set has no batch. BatchRunning: the
	// batch is under way (later protocol revisions say so).
	BatchNotUsed = "not used"
	BatchRunning = "running"
)

// Limit statuses and batch statuses a tightening may carry.
var (
	LimitStatuses = []string{StatusLow, StatusOK, StatusHigh}
	BatchStatuses = []string{StatusNOK, StatusOK, BatchNotUsed, BatchRunning}
)

// Tightening is the data of a KindTightening event. Values are in N·m and
// degrees; a nil value is unknown (a result fetched from the controller's
// memory carries no limits; a torque in a unit that has no N·m, such as
// percent, is unknown).
type Tightening struct {
	// Controller is the controller's id in the line config, Channel its
	// channel (tool) the tightening was made with.
	Controller string `json:"controller"`
	Channel    int    `json:"channel"`
	// TighteningID is the controller's unique, increasing id of the
	// tightening: with the controller, the key of the event.
	TighteningID uint32 `json:"tightening_id"`
	// VIN is the VIN the controller put on the result (the agent's MID 0050
	// download), as it was. The envelope's VIN is the same when it is a
	// car identity the line accepts, else empty.
	VIN string `json:"vin"`
	// Pset is the parameter set the tightening was made with.
	Pset     int    `json:"pset"`
	PsetName string `json:"pset_name,omitempty"`
	// BatchSize and BatchCounter as the controller counted them (the
	// counter counts OK tightenings), BatchStatus the batch's status after
	// this tightening: OK, NOK, not used or running.
	BatchSize    int    `json:"batch_size"`
	BatchCounter int    `json:"batch_counter"`
	BatchStatus  string `json:"batch_status"`
	// Result is the tightening status, OK or NOK; TorqueStatus and
	// AngleStatus say low, OK or high.
	Result       string `json:"result"`
	TorqueStatus string `json:"torque_status"`
	AngleStatus  string `json:"angle_status"`
	// TorqueNm and AngleDeg are the final values, with the limits and
	// targets of the parameter set.
	TorqueNm       *float64 `json:"torque_nm"`
	TorqueMinNm    *float64 `json:"torque_min_nm"`
	TorqueMaxNm    *float64 `json:"torque_max_nm"`
	TorqueTargetNm *float64 `json:"torque_target_nm"`
	AngleDeg       *float64 `json:"angle_deg"`
	AngleMinDeg    *float64 `json:"angle_min_deg"`
	AngleMaxDeg    *float64 `json:"angle_max_deg"`
	AngleTargetDeg *float64 `json:"angle_target_deg"`
	// TorqueUnit is the unit the controller reported torques in, when it
	// said (N·m, lbf·ft, ...); the values above are converted to N·m.
	TorqueUnit string `json:"torque_unit,omitempty"`
	// ControllerTime is the controller's timestamp of the tightening (to
	// the second, read in the controller's configured time zone); zero
	// when the controller gave none, and then the event's occurred_at is
	// the agent's clock (Clock ClockAgent).
	ControllerTime time.Time `json:"controller_time"`
	Clock          string    `json:"clock,omitempty"`
	// Joint and Class are the joint the agent assigned the tightening by
	// its position in the batch (the line config's joints of the
	// controller) and its VDI/VDE 2862 class; empty when the position
	// names no joint.
	Joint string `json:"joint"`
	Class string `json:"class"`
	// ToolSerial is the tool's serial number, when the controller says.
	ToolSerial string `json:"tool_serial,omitempty"`
	// MID is the message that carried the result: 61 pushed when made, 65
	// fetched from the controller's memory after an outage.
	MID int `json:"mid"`
	// WhileDisabled flags a tightening the controller made while the agent
	// had the tool disabled (the interlock): an alarm is raised with it.
	WhileDisabled bool `json:"while_disabled,omitempty"`
}

// TighteningEventID returns the deterministic id of the tightening event of
// controller's tightening id at station:
// <plant>.<line>.<station>.tightening.<controller>.<tightening id>. The
// controller's ids never repeat, so a result sent again, fetched again or
// republished gets the same id.
func TighteningEventID(plant, line, station, controller string, id uint32) string {
	return plant + "." + line + "." + station + "." + KindTightening + "." + controller + "." + strconv.FormatUint(uint64(id), 10)
}

// NewTighteningEvent builds the envelope of tightening t at station, with
// its deterministic id. vin is the envelope's car identity ("" when the
// tightening's VIN is not one the line accepts).
func NewTighteningEvent(plant, line, station, vin string, t *Tightening, occurred, recorded time.Time) (*Event, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("station %s: controller %s: encode tightening %d: %w", station, t.Controller, t.TighteningID, err)
	}
	return &Event{
		Version:    Version,
		ID:         TighteningEventID(plant, line, station, t.Controller, t.TighteningID),
		Kind:       KindTightening,
		Plant:      plant,
		Line:       line,
		Station:    station,
		VIN:        vin,
		OccurredAt: occurred.UTC(),
		RecordedAt: recorded.UTC(),
		Data:       b,
	}, nil
}

// Tightening decodes the data of a tightening event.
func (ev *Event) Tightening() (*Tightening, error) {
	var t Tightening
	if err := json.Unmarshal(ev.Data, &t); err != nil {
		return nil, fmt.Errorf("%w: event %q: tightening data: %v", ErrMalformed, ev.ID, err)
	}
	return &t, nil
}

// validateTightening checks a tightening event's data and id under the
// line's identity policy; bad formats the error.
func (ev *Event) validateTightening(p IdentityPolicy, bad func(string, ...any) error) error {
	t, err := ev.Tightening()
	if err != nil {
		return err
	}
	if t.Controller == "" || strings.ContainsAny(t.Controller, ".*> \t\r\n") {
		return bad("controller %q must be a non-empty word without dots or spaces", t.Controller)
	}
	if t.TighteningID == 0 {
		return bad("controller %s: tightening id 0: a controller's ids start at 1", t.Controller)
	}
	if want := TighteningEventID(ev.Plant, ev.Line, ev.Station, t.Controller, t.TighteningID); ev.ID != want {
		return bad("id does not match controller %s tightening %d (want %q)", t.Controller, t.TighteningID, want)
	}
	if ev.VIN != "" {
		if err := p.Check(ev.VIN, ""); err != nil {
			return bad("station %s: %v", ev.Station, err)
		}
		if t.VIN != ev.VIN {
			return bad("vin %q is not the tightening's VIN %q", ev.VIN, t.VIN)
		}
	}
	if ev.Body != "" {
		return bad("a tightening carries no body number")
	}
	if t.Result != StatusOK && t.Result != StatusNOK {
		return bad("result %q must be OK or NOK", t.Result)
	}
	for name, s := range map[string]string{"torque_status": t.TorqueStatus, "angle_status": t.AngleStatus} {
		if !slices.Contains(LimitStatuses, s) {
			return bad("%s %q must be one of %s", name, s, strings.Join(LimitStatuses, ", "))
		}
	}
	if !slices.Contains(BatchStatuses, t.BatchStatus) {
		return bad("batch_status %q must be one of %s", t.BatchStatus, strings.Join(BatchStatuses, ", "))
	}
	if t.Class != "" && t.Class != "A" && t.Class != "B" && t.Class != "C" {
		return bad("class %q must be A, B, C or empty", t.Class)
	}
	if t.Class != "" && t.Joint == "" {
		return bad("class %s without a joint", t.Class)
	}
	if t.MID != 61 && t.MID != 65 {
		return bad("mid %d must be 61 or 65", t.MID)
	}
	if t.Channel < 0 || t.Pset < 0 || t.BatchSize < 0 || t.BatchCounter < 0 {
		return bad("channel %d, pset %d, batch size %d and counter %d must not be negative", t.Channel, t.Pset, t.BatchSize, t.BatchCounter)
	}
	if t.Clock != "" && t.Clock != ClockAgent {
		return bad("clock %q must be %s or empty (the controller's)", t.Clock, ClockAgent)
	}
	return nil
}
