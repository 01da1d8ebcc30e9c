package torque

import (
	"fmt"
	"time"
)

// MIDs the simulator speaks.
const (
	midCommStart    = 1
	midCommStartAck = 2
	midCommStop     = 3
	midError        = 4
	midAccepted     = 5
	midSelectPset   = 18
	midDisable      = 42
	midEnable       = 43
	midVIN          = 50
	midSubscribe    = 60
	midResult       = 61
	midResultAck    = 62
	midUnsubscribe  = 63
	midOldRequest   = 64
	midOldResult    = 65
	midKeepAlive    = 9999
)

// Error codes of MID 0004 the simulator answers.
const (
	codeInvalidData         = 1
	codePsetNotPresent      = 2
	codeSubscriptionExists  = 9
	codeSubscriptionMissing = 10
	codeTighteningNotFound  = 15
	codeClientConnected     = 96
	codeRevisionUnsupported = 97
	codeUnknownMID          = 99
	timeLayout              = "2006-01-02:15:04:05"
	openProtocolVersion     = "2.8.0"
	controllerSoftware      = "keiline-sim"
	supplierCode            = "SIM"
)

func errorFrame(mid, code int) []byte {
	return frame(midError, 1, fmt.Sprintf("%04d%02d", mid, code))
}

func acceptedFrame(mid int) []byte { return frame(midAccepted, 1, fmt.Sprintf("%04d", mid)) }

// commStartAck is the MID 0002 of revision rev.
func (c *Controller) commStartAck(rev int) []byte {
	p := &params{}
	p.num(int64(c.cfg.CellID), 4).num(int64(c.cfg.Tools[0].Channel), 2).text(c.cfg.Name, 25)
	if rev >= 2 {
		p.text(supplierCode, 3)
	}
	if rev >= 3 {
		p.text(openProtocolVersion, 19).text(controllerSoftware, 19).text(controllerSoftware, 19)
	}
	if rev >= 4 {
		p.text("simulated", 24).text(fmt.Sprintf("S%04d", c.cfg.CellID), 10)
	}
	if rev >= 5 {
		p.num(1, 3).num(1, 3)
	}
	if rev >= 6 {
		p.num(1, 1).num(0, 1) // sequence numbers supported, linking not
	}
	return frame(midCommStartAck, rev, p.String())
}

func stamp(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "0000-00-00:00:00:00"
	}
	return t.In(loc).Format(timeLayout)
}

func bit(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// resultFrame is the MID 0061 of revision rev for t.
func resultFrame(t *Tightening, rev int, loc *time.Location) []byte {
	p := &params{}
	if rev == 1 {
		p.num(int64(t.CellID), 4).num(int64(t.Channel), 2).text(t.Controller, 25).text(t.VIN, 25).
			num(int64(t.JobID), 2).num(int64(t.Pset), 3).num(int64(t.BatchSize), 4).num(int64(t.BatchCounter), 4).
			num(bit(t.OK), 1).num(int64(t.TorqueStatus), 1).num(int64(t.AngleStatus), 1).
			num(int64(t.TorqueMin), 6).num(int64(t.TorqueMax), 6).num(int64(t.TorqueTarget), 6).num(int64(t.Torque), 6).
			num(int64(t.AngleMin), 5).num(int64(t.AngleMax), 5).num(int64(t.AngleTarget), 5).num(int64(t.Angle), 5).
			text(stamp(t.Time, loc), 19).text(stamp(t.PsetChanged, loc), 19).num(int64(t.BatchStatus), 1).
			num(int64(t.ID), 10)
		return frame(midResult, 1, p.String())
	}
	p.num(int64(t.CellID), 4).num(int64(t.Channel), 2).text(t.Controller, 25).text(t.VIN, 25).
		num(int64(t.JobID), 4).num(int64(t.Pset), 3).num(int64(t.Strategy), 2).num(strategyOptions, 5).
		num(int64(t.BatchSize), 4).num(int64(t.BatchCounter), 4).
		num(bit(t.OK), 1).num(int64(t.BatchStatus), 1).num(int64(t.TorqueStatus), 1).num(int64(t.AngleStatus), 1).
		num(1, 1).num(1, 1).num(1, 1).num(1, 1).num(1, 1). // rundown, current, selftap, prevail monitoring and compensate
		num(int64(t.ErrorStatus), 10).
		num(int64(t.TorqueMin), 6).num(int64(t.TorqueMax), 6).num(int64(t.TorqueTarget), 6).num(int64(t.Torque), 6).
		num(int64(t.AngleMin), 5).num(int64(t.AngleMax), 5).num(int64(t.AngleTarget), 5).num(int64(t.Angle), 5).
		num(0, 5).num(int64(t.AngleMax), 5).num(rundownAngle(t), 5). // rundown angle min, max, value
		num(0, 3).num(100, 3).num(currentValue(t), 3).               // current monitoring min, max, value (%)
		num(0, 6).num(0, 6).num(0, 6).                               // selftap min, max, torque
		num(0, 6).num(0, 6).num(0, 6).                               // prevail torque min, max, value
		num(int64(t.ID), 10).num(0, 5).num(0, 5).text(t.ToolSerial, 14).
		text(stamp(t.Time, loc), 19).text(stamp(t.PsetChanged, loc), 19)
	if rev >= 3 {
		p.text(t.PsetName, 25).num(1, 1).num(1, 2) // torque in N·m, result type tightening
	}
	if rev >= 4 {
		p.text("", 25).text("", 25).text("", 25)
	}
	if rev >= 5 {
		p.text("", 4)
	}
	if rev >= 6 {
		p.num(0, 6).num(0, 10)
	}
	if rev >= 7 {
		p.num(int64(t.Angle)*100, 7).num(int64(t.Angle)*100, 7)
	}
	return frame(midResult, rev, p.String())
}

// strategyOptions: bit 0 torque, bit 1 angle.
const strategyOptions = 3

func rundownAngle(t *Tightening) int64 { return int64(t.Angle) * 9 / 10 }
func currentValue(t *Tightening) int64 {
	if t.TorqueMax == 0 {
		return 0
	}
	return min(int64(t.Torque)*80/int64(t.TorqueMax), 999)
}

// oldResultFrame is the MID 0065 of revision rev for t.
func oldResultFrame(t *Tightening, rev int, loc *time.Location) []byte {
	p := &params{}
	if rev == 1 {
		p.num(int64(t.ID), 10).text(t.VIN, 25).num(int64(t.Pset), 3).num(int64(t.BatchCounter), 4).
			num(bit(t.OK), 1).num(int64(t.TorqueStatus), 1).num(int64(t.AngleStatus), 1).
			num(int64(t.Torque), 6).num(int64(t.Angle), 5).text(stamp(t.Time, loc), 19).num(int64(t.BatchStatus), 1)
		return frame(midOldResult, 1, p.String())
	}
	p.num(int64(t.ID), 10).text(t.VIN, 25).num(int64(t.JobID), 4).num(int64(t.Pset), 3).
		num(int64(t.Strategy), 2).num(strategyOptions, 5).num(int64(t.BatchSize), 4).num(int64(t.BatchCounter), 4).
		num(bit(t.OK), 1).num(int64(t.BatchStatus), 1).num(int64(t.TorqueStatus), 1).num(int64(t.AngleStatus), 1).
		num(1, 1).num(1, 1).num(1, 1).num(1, 1).num(1, 1).num(int64(t.ErrorStatus), 10).
		num(int64(t.Torque), 6).num(int64(t.Angle), 5).num(rundownAngle(t), 5).num(currentValue(t), 3).
		num(0, 6).num(0, 6).num(0, 5).num(0, 5).text(t.ToolSerial, 14).text(stamp(t.Time, loc), 19)
	if rev >= 3 {
		p.num(1, 1).num(1, 2)
	}
	if rev >= 4 {
		p.text("", 25).text("", 25).text("", 25)
	}
	if rev >= 5 {
		p.text("", 4)
	}
	if rev >= 6 {
		p.num(0, 6).num(0, 10)
	}
	return frame(midOldResult, rev, p.String())
}
