package openprotocol

import (
	"fmt"
	"time"
)

// Revisions of the result messages this package parses.
const (
	// ResultRevisionMax is the highest MID 0061 revision parsed.
	ResultRevisionMax = 7
	// OldResultRevisionMax is the highest MID 0065 revision parsed.
	OldResultRevisionMax = 6
)

// LimitStatus is a measured value against its limits.
type LimitStatus int

// Limit statuses as the protocol sends them.
const (
	Low  LimitStatus = 0
	OK   LimitStatus = 1
	High LimitStatus = 2
)

func (s LimitStatus) String() string {
	switch s {
	case Low:
		return "low"
	case OK:
		return "OK"
	case High:
		return "high"
	}
	return fmt.Sprintf("status %d", int(s))
}

// BatchStatus is the state of the parameter set's batch after a tightening.
type BatchStatus int

// Batch statuses as the protocol sends them.
const (
	BatchNOK     BatchStatus = 0 // the batch is not (yet) completed OK
	BatchOK      BatchStatus = 1 // the batch is completed OK
	BatchNotUsed BatchStatus = 2 // the parameter set has no batch
	BatchRunning BatchStatus = 3 // later revisions: the batch is running
)

func (s BatchStatus) String() string {
	switch s {
	case BatchNOK:
		return "NOK"
	case BatchOK:
		return "OK"
	case BatchNotUsed:
		return "not used"
	case BatchRunning:
		return "running"
	}
	return fmt.Sprintf("batch status %d", int(s))
}

// Result is one tightening as the controller reported it, in MID 0061 (last
// tightening result, pushed to a subscriber) or MID 0065 (old tightening
// result, fetched by id). Torques are in the controller's torque unit,
// N·m unless Detail.TorqueUnit says otherwise (the protocol sends
// hundredths); angles in degrees.
type Result struct {
	// Controller is the configured controller id the result came from.
	Controller string
	// MID is 61 or 65: the message that carried the result. A MID 0065 does
	// not carry cell, channel and controller name (they are filled from the
	// controller's MID 0002), nor Limits, nor (revision 1) job id and batch
	// size.
	MID      int
	Revision int

	CellID, ChannelID int
	ControllerName    string

	VIN          string
	JobID        int
	Pset         int
	BatchSize    int
	BatchCounter int
	BatchStatus  BatchStatus
	// OK is the tightening status.
	OK           bool
	TorqueStatus LimitStatus
	AngleStatus  LimitStatus
	// Torque is the final torque, Angle the final angle.
	Torque float64
	Angle  int
	// Limits is nil when the message did not carry them (MID 0065).
	Limits *Limits
	// Time is the tightening's timestamp, read in the configured location.
	Time time.Time
	// PsetChanged is when the parameter set was last changed (zero when
	// the message does not carry it).
	PsetChanged time.Time
	// TighteningID is the controller's unique, increasing id of the
	// tightening: with the controller id, the key of the result.
	TighteningID uint32
	// Detail holds what revision 2 and later add; nil for revision 1.
	Detail *Detail

	// Raw is the whole frame as received.
	Raw []byte

	gen uint64 // the connection that delivered it, for Ack
}

// Limits are a tightening's torque and angle limits and targets.
type Limits struct {
	TorqueMin, TorqueMax, TorqueTarget float64
	AngleMin, AngleMax, AngleTarget    int
}

// Detail is what MID 0061 and 0065 revision 2 and later add. Fields of a
// revision above the message's are zero; the min/max limits are 0 in a
// MID 0065, which does not carry them.
type Detail struct {
	// Strategy (e.g. 1 torque control, 2 torque control / angle
	// monitoring) and StrategyOptions (a bit set).
	Strategy, StrategyOptions int

	RundownAngleStatus            LimitStatus
	CurrentMonitoringStatus       LimitStatus
	SelftapStatus                 LimitStatus
	PrevailTorqueMonitoringStatus LimitStatus
	PrevailTorqueCompensateStatus LimitStatus
	// TighteningErrorStatus is a bit set of why a tightening failed.
	TighteningErrorStatus uint32

	RundownAngleMin, RundownAngleMax, RundownAngle                     int
	CurrentMonitoringMin, CurrentMonitoringMax, CurrentMonitoringValue int // percent
	SelftapMin, SelftapMax, SelftapTorque                              float64
	PrevailTorqueMin, PrevailTorqueMax, PrevailTorque                  float64

	JobSequence, SyncTighteningID int
	ToolSerial                    string

	// Revision 3: the parameter set's name, the torque unit (1 N·m, 2
	// lbf·ft, 3 lbf·in, 4 kpm, 5 kgf·cm, 6 ozf·in, 7 %, 8 N·cm) and the
	// result type (1 tightening, 2 loosening, 3 batch increment, ...).
	PsetName   string
	TorqueUnit int
	ResultType int
	// Revision 4: identifier result parts 2 to 4.
	Identifiers [3]string
	// Revision 5.
	CustomerErrorCode string
	// Revision 6.
	PrevailTorqueCompensate float64
	TighteningErrorStatus2  uint32
	// Revision 7 (MID 0061 only), in degrees.
	CompensatedAngle, FinalAngleDecimal float64
}

// ParseResult parses a MID 0061 frame of revision 1 to ResultRevisionMax,
// reading timestamps in loc. It returns a *ParseError naming the first
// parameter that does not parse. Data beyond the revision's is ignored.
func ParseResult(f Frame, loc *time.Location) (Result, error) {
	r := Result{MID: 61, Revision: f.Revision, Raw: f.Raw}
	if f.MID != 61 {
		return r, &ParseError{MID: f.MID, Revision: f.Revision, Reason: "not a MID 0061"}
	}
	if f.Revision > ResultRevisionMax {
		return r, &ParseError{MID: 61, Revision: f.Revision, Reason: fmt.Sprintf("revision above %d is not parsed", ResultRevisionMax)}
	}
	p := &params{data: f.Data, mid: 61, rev: f.Revision, loc: loc}
	if f.Revision == 1 {
		parseResultRev1(p, &r)
	} else {
		parseResultRev2(p, &r)
	}
	return r, p.err
}

func parseResultRev1(p *params, r *Result) {
	lim := &Limits{}
	r.CellID = p.int(1, 4, "cell ID")
	r.ChannelID = p.int(2, 2, "channel ID")
	r.ControllerName = p.str(3, 25, "torque controller name")
	r.VIN = p.str(4, 25, "VIN number")
	r.JobID = p.int(5, 2, "job ID")
	r.Pset = p.int(6, 3, "parameter set ID")
	r.BatchSize = p.int(7, 4, "batch size")
	r.BatchCounter = p.int(8, 4, "batch counter")
	r.OK = p.status(9, "tightening status", 1) == 1
	r.TorqueStatus = LimitStatus(p.status(10, "torque status", 2))
	r.AngleStatus = LimitStatus(p.status(11, "angle status", 2))
	lim.TorqueMin = p.centi(12, 6, "torque min limit", false)
	lim.TorqueMax = p.centi(13, 6, "torque max limit", false)
	lim.TorqueTarget = p.centi(14, 6, "torque final target", false)
	r.Torque = p.centi(15, 6, "torque", true)
	lim.AngleMin = p.int(16, 5, "angle min")
	lim.AngleMax = p.int(17, 5, "angle max")
	lim.AngleTarget = p.int(18, 5, "final angle target")
	r.Angle = int(p.num(19, 5, "angle", true))
	r.Time = p.time(20, "time stamp", true)
	r.PsetChanged = p.time(21, "date/time of last change in parameter set settings", false)
	r.BatchStatus = BatchStatus(p.status(22, "batch status", 3))
	r.TighteningID = p.uint32(23, 10, "tightening ID", true)
	r.Limits = lim
}

func parseResultRev2(p *params, r *Result) {
	lim := &Limits{}
	d := &Detail{}
	r.CellID = p.int(1, 4, "cell ID")
	r.ChannelID = p.int(2, 2, "channel ID")
	r.ControllerName = p.str(3, 25, "torque controller name")
	r.VIN = p.str(4, 25, "VIN number")
	r.JobID = p.int(5, 4, "job ID")
	r.Pset = p.int(6, 3, "parameter set ID")
	d.Strategy = p.int(7, 2, "strategy")
	d.StrategyOptions = p.int(8, 5, "strategy options")
	r.BatchSize = p.int(9, 4, "batch size")
	r.BatchCounter = p.int(10, 4, "batch counter")
	r.OK = p.status(11, "tightening status", 1) == 1
	r.BatchStatus = BatchStatus(p.status(12, "batch status", 3))
	r.TorqueStatus = LimitStatus(p.status(13, "torque status", 2))
	r.AngleStatus = LimitStatus(p.status(14, "angle status", 2))
	d.RundownAngleStatus = LimitStatus(p.status(15, "rundown angle status", 2))
	d.CurrentMonitoringStatus = LimitStatus(p.status(16, "current monitoring status", 2))
	d.SelftapStatus = LimitStatus(p.status(17, "selftap status", 2))
	d.PrevailTorqueMonitoringStatus = LimitStatus(p.status(18, "prevail torque monitoring status", 2))
	d.PrevailTorqueCompensateStatus = LimitStatus(p.status(19, "prevail torque compensate status", 2))
	d.TighteningErrorStatus = p.uint32(20, 10, "tightening error status", false)
	lim.TorqueMin = p.centi(21, 6, "torque min limit", false)
	lim.TorqueMax = p.centi(22, 6, "torque max limit", false)
	lim.TorqueTarget = p.centi(23, 6, "torque final target", false)
	r.Torque = p.centi(24, 6, "torque", true)
	lim.AngleMin = p.int(25, 5, "angle min")
	lim.AngleMax = p.int(26, 5, "angle max")
	lim.AngleTarget = p.int(27, 5, "final angle target")
	r.Angle = int(p.num(28, 5, "angle", true))
	d.RundownAngleMin = p.int(29, 5, "rundown angle min")
	d.RundownAngleMax = p.int(30, 5, "rundown angle max")
	d.RundownAngle = p.int(31, 5, "rundown angle")
	d.CurrentMonitoringMin = p.int(32, 3, "current monitoring min")
	d.CurrentMonitoringMax = p.int(33, 3, "current monitoring max")
	d.CurrentMonitoringValue = p.int(34, 3, "current monitoring value")
	d.SelftapMin = p.centi(35, 6, "selftap min", false)
	d.SelftapMax = p.centi(36, 6, "selftap max", false)
	d.SelftapTorque = p.centi(37, 6, "selftap torque", false)
	d.PrevailTorqueMin = p.centi(38, 6, "prevail torque monitoring min", false)
	d.PrevailTorqueMax = p.centi(39, 6, "prevail torque monitoring max", false)
	d.PrevailTorque = p.centi(40, 6, "prevail torque", false)
	r.TighteningID = p.uint32(41, 10, "tightening ID", true)
	d.JobSequence = p.int(42, 5, "job sequence number")
	d.SyncTighteningID = p.int(43, 5, "sync tightening ID")
	d.ToolSerial = p.str(44, 14, "tool serial number")
	r.Time = p.time(45, "time stamp", true)
	r.PsetChanged = p.time(46, "date/time of last change in parameter set settings", false)
	if p.rev >= 3 {
		d.PsetName = p.str(47, 25, "parameter set name")
		d.TorqueUnit = p.int(48, 1, "torque values unit")
		d.ResultType = p.int(49, 2, "result type")
	}
	if p.rev >= 4 {
		d.Identifiers[0] = p.str(50, 25, "identifier result part 2")
		d.Identifiers[1] = p.str(51, 25, "identifier result part 3")
		d.Identifiers[2] = p.str(52, 25, "identifier result part 4")
	}
	if p.rev >= 5 {
		d.CustomerErrorCode = p.str(53, 4, "customer tightening error code")
	}
	if p.rev >= 6 {
		d.PrevailTorqueCompensate = p.centi(54, 6, "prevail torque compensate value", false)
		d.TighteningErrorStatus2 = p.uint32(55, 10, "tightening error status 2", false)
	}
	if p.rev >= 7 {
		d.CompensatedAngle = p.centi(56, 7, "compensated angle", false)
		d.FinalAngleDecimal = p.centi(57, 7, "final angle decimal", false)
	}
	r.Limits = lim
	r.Detail = d
}

// ParseOldResult parses a MID 0065 frame of revision 1 to
// OldResultRevisionMax, reading timestamps in loc. It returns a
// *ParseError naming the first parameter that does not parse.
func ParseOldResult(f Frame, loc *time.Location) (Result, error) {
	r := Result{MID: 65, Revision: f.Revision, Raw: f.Raw}
	if f.MID != 65 {
		return r, &ParseError{MID: f.MID, Revision: f.Revision, Reason: "not a MID 0065"}
	}
	if f.Revision > OldResultRevisionMax {
		return r, &ParseError{MID: 65, Revision: f.Revision, Reason: fmt.Sprintf("revision above %d is not parsed", OldResultRevisionMax)}
	}
	p := &params{data: f.Data, mid: 65, rev: f.Revision, loc: loc}
	if f.Revision == 1 {
		r.TighteningID = p.uint32(1, 10, "tightening ID", true)
		r.VIN = p.str(2, 25, "VIN number")
		r.Pset = p.int(3, 3, "parameter set ID")
		r.BatchCounter = p.int(4, 4, "batch counter")
		r.OK = p.status(5, "tightening status", 1) == 1
		r.TorqueStatus = LimitStatus(p.status(6, "torque status", 2))
		r.AngleStatus = LimitStatus(p.status(7, "angle status", 2))
		r.Torque = p.centi(8, 6, "torque", true)
		r.Angle = int(p.num(9, 5, "angle", true))
		r.Time = p.time(10, "time stamp", true)
		r.BatchStatus = BatchStatus(p.status(11, "batch status", 3))
		return r, p.err
	}
	parseOldResultRev2(p, &r)
	return r, p.err
}

func parseOldResultRev2(p *params, r *Result) {
	d := &Detail{}
	r.TighteningID = p.uint32(1, 10, "tightening ID", true)
	r.VIN = p.str(2, 25, "VIN number")
	r.JobID = p.int(3, 4, "job ID")
	r.Pset = p.int(4, 3, "parameter set ID")
	d.Strategy = p.int(5, 2, "strategy")
	d.StrategyOptions = p.int(6, 5, "strategy options")
	r.BatchSize = p.int(7, 4, "batch size")
	r.BatchCounter = p.int(8, 4, "batch counter")
	r.OK = p.status(9, "tightening status", 1) == 1
	r.BatchStatus = BatchStatus(p.status(10, "batch status", 3))
	r.TorqueStatus = LimitStatus(p.status(11, "torque status", 2))
	r.AngleStatus = LimitStatus(p.status(12, "angle status", 2))
	d.RundownAngleStatus = LimitStatus(p.status(13, "rundown angle status", 2))
	d.CurrentMonitoringStatus = LimitStatus(p.status(14, "current monitoring status", 2))
	d.SelftapStatus = LimitStatus(p.status(15, "selftap status", 2))
	d.PrevailTorqueMonitoringStatus = LimitStatus(p.status(16, "prevail torque monitoring status", 2))
	d.PrevailTorqueCompensateStatus = LimitStatus(p.status(17, "prevail torque compensate status", 2))
	d.TighteningErrorStatus = p.uint32(18, 10, "tightening error status", false)
	r.Torque = p.centi(19, 6, "torque", true)
	r.Angle = int(p.num(20, 5, "angle", true))
	d.RundownAngle = p.int(21, 5, "rundown angle")
	d.CurrentMonitoringValue = p.int(22, 3, "current monitoring value")
	d.SelftapTorque = p.centi(23, 6, "selftap torque", false)
	d.PrevailTorque = p.centi(24, 6, "prevail torque", false)
	d.JobSequence = p.int(25, 5, "job sequence number")
	d.SyncTighteningID = p.int(26, 5, "sync tightening ID")
	d.ToolSerial = p.str(27, 14, "tool serial number")
	r.Time = p.time(28, "time stamp", true)
	if p.rev >= 3 {
		d.TorqueUnit = p.int(29, 1, "torque values unit")
		d.ResultType = p.int(30, 2, "result type")
	}
	if p.rev >= 4 {
		d.Identifiers[0] = p.str(31, 25, "identifier result part 2")
		d.Identifiers[1] = p.str(32, 25, "identifier result part 3")
		d.Identifiers[2] = p.str(33, 25, "identifier result part 4")
	}
	if p.rev >= 5 {
		d.CustomerErrorCode = p.str(34, 4, "customer tightening error code")
	}
	if p.rev >= 6 {
		d.PrevailTorqueCompensate = p.centi(35, 6, "prevail torque compensate value", false)
		d.TighteningErrorStatus2 = p.uint32(36, 10, "tightening error status 2", false)
	}
	r.Detail = d
}
