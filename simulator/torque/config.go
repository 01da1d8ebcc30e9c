package torque

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"
)

// Defaults and limits of a Config.
const (
	// AddrDefault listens on a free loopback port.
	AddrDefault = "127.0.0.1:0"
	// NameDefault is the controller name when none is given.
	NameDefault = "SIM"
	// RevisionMax is the highest MID 0001/0002 revision the simulator speaks.
	RevisionMax = 6
	// ResultRevisionMax is the highest MID 0060/0061 revision it speaks.
	ResultRevisionMax = 7
	// OldResultRevisionMax is the highest MID 0064/0065 revision it speaks.
	OldResultRevisionMax = 6

	// KeepAliveTimeoutDefault: a real controller drops a client silent
	// for 15 s.
	KeepAliveTimeoutDefault = 15 * time.Second
	// AckTimeoutDefault is how long a pushed MID 0061 waits for its MID
	// 0062 before it is sent again (10 s and 3 retries are the defaults of
	// Sturtevant Richmont's Global 400 manual, "Ack Timeout", "Retries").
	AckTimeoutDefault = 10 * time.Second
	// AckRetriesDefault is how many times a result is sent again before
	// the link is taken for broken and closed.
	AckRetriesDefault = 3
	// PushWindowDefault is how many pushed results may await their
	// acknowledge at once (real controllers: one).
	PushWindowDefault = 1
	// MergeLinger is the longest a merged write waits for more frames.
	MergeLinger = 20 * time.Millisecond

	nameLen   = 25
	serialLen = 14
	vinLen    = 25
	centiMax  = 999999 // six digits of hundredths: 9999.99 N·m
	angleMax  = 99999
)

// Config configures a simulated tightening controller.
type Config struct {
	// Name is the controller name (MID 0002 and 0061, at most 25
	// characters). Defaults to NameDefault.
	Name string
	// Addr is the TCP address to listen on. Defaults to AddrDefault; a
	// restarted controller listens again on the address it had.
	Addr string
	// CellID is the cell id, 0..9999.
	CellID int
	// Tools are the controller's tools, one channel each. At least one.
	Tools []Tool
	// MaxRevision is the highest MID 0001 revision answered with a MID
	// 0002; above it the controller answers error 97. Defaults to
	// RevisionMax; 1..RevisionMax.
	MaxRevision int
	// MaxResultRevision is the highest MID 0060 revision accepted (and so
	// of the MID 0061 pushed); MID 0064 is accepted up to
	// min(MaxResultRevision, OldResultRevisionMax). Defaults to
	// ResultRevisionMax; 1..ResultRevisionMax.
	MaxResultRevision int
	// KeepAliveTimeout: a client that sends nothing for this long is
	// dropped. Defaults to KeepAliveTimeoutDefault.
	KeepAliveTimeout time.Duration
	// AckTimeout and AckRetries: a pushed result unacknowledged for
	// AckTimeout is sent again, up to AckRetries times, then the link is
	// closed. Default to AckTimeoutDefault and AckRetriesDefault; a
	// negative AckRetries means never close.
	AckTimeout time.Duration
	AckRetries int
	// PushWindow is how many pushed results may await acknowledge at once.
	// Defaults to PushWindowDefault.
	PushWindow int
	// Keep, when above 0, is how many of the newest results the controller
	// answers MID 0064 for (a real controller's result memory is a ring);
	// older ids get error 15. Truth keeps every one. Defaults to 0: all.
	Keep int
	// Seed makes the tightening values: the same seed, the same values.
	Seed uint64
	// NOKRate is the share of tightenings with a torque outside its
	// limits, 0..1.
	NOKRate float64
	// Enabled is the tool state before any MID 0042/0043. Defaults to
	// false: the tools wait for the MES to enable them.
	Enabled bool
	// StateDir, when set, keeps the results, the id counter and the
	// controller state on disk, so a controller started again (this one,
	// or a new one on the same directory) goes on where it stopped.
	StateDir string
	// Location is the controller's time zone: its timestamps are local time.
	// Defaults to time.Local.
	Location *time.Location
	// Now is the controller's clock. Defaults to time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Tool is a tool (a channel) of the controller.
type Tool struct {
	// Channel is the channel id, 1..99, unique in the controller.
	Channel int
	// Serial is the tool serial number, at most 14 characters.
	Serial string
	// Psets are the tool's parameter sets by id, 1..999. At least one.
	Psets map[int]Pset
}

// Pset is a parameter set: what a tightening aims at and accepts.
type Pset struct {
	// Name, at most 25 characters.
	Name string
	// Torque limits and target in N·m (hundredths are kept),
	// 0 < TorqueMin <= TorqueTarget <= TorqueMax <= 9999.99.
	TorqueMin, TorqueMax, TorqueTarget float64
	// Angle limits and target in degrees, 0 <= AngleMin <= AngleTarget <=
	// AngleMax <= 99999.
	AngleMin, AngleMax, AngleTarget int
	// BatchSize is the tightenings of a batch, 0 (no batch) to 9999.
	BatchSize int
	// Strategy is the tightening strategy code. Defaults to 2, torque
	// control / angle monitoring.
	Strategy int
}

// Validate checks the config and fills its defaults. The error names the
// bad field and the values allowed.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("torque controller %q config: %s", c.Name, fmt.Sprintf(format, args...))
	}
	if c.Name == "" {
		c.Name = NameDefault
	}
	if len(c.Name) > nameLen {
		return bad("Name is longer than %d characters", nameLen)
	}
	if c.Addr == "" {
		c.Addr = AddrDefault
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("Addr %q is not host:port: %v", c.Addr, err)
	}
	if c.CellID < 0 || c.CellID > 9999 {
		return bad("CellID %d is outside 0..9999", c.CellID)
	}
	if len(c.Tools) == 0 {
		return bad("Tools: at least one tool is required")
	}
	var channels []int
	for i := range c.Tools {
		t := &c.Tools[i]
		if t.Channel < 1 || t.Channel > 99 {
			return bad("Tools[%d].Channel %d is outside 1..99", i, t.Channel)
		}
		if slices.Contains(channels, t.Channel) {
			return bad("Tools[%d].Channel %d is used twice", i, t.Channel)
		}
		channels = append(channels, t.Channel)
		if len(t.Serial) > serialLen {
			return bad("Tools[%d].Serial is longer than %d characters", i, serialLen)
		}
		if len(t.Psets) == 0 {
			return bad("Tools[%d].Psets: at least one parameter set is required", i)
		}
		for id, p := range t.Psets {
			if err := p.check(id); err != nil {
				return bad("Tools[%d].Psets[%d]: %v", i, id, err)
			}
		}
	}
	if c.MaxRevision == 0 {
		c.MaxRevision = RevisionMax
	}
	if c.MaxRevision < 1 || c.MaxRevision > RevisionMax {
		return bad("MaxRevision %d is outside 1..%d", c.MaxRevision, RevisionMax)
	}
	if c.MaxResultRevision == 0 {
		c.MaxResultRevision = ResultRevisionMax
	}
	if c.MaxResultRevision < 1 || c.MaxResultRevision > ResultRevisionMax {
		return bad("MaxResultRevision %d is outside 1..%d", c.MaxResultRevision, ResultRevisionMax)
	}
	if c.KeepAliveTimeout == 0 {
		c.KeepAliveTimeout = KeepAliveTimeoutDefault
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = AckTimeoutDefault
	}
	if c.KeepAliveTimeout < 0 || c.AckTimeout < 0 {
		return bad("KeepAliveTimeout and AckTimeout must be positive")
	}
	if c.AckRetries == 0 {
		c.AckRetries = AckRetriesDefault
	}
	if c.PushWindow == 0 {
		c.PushWindow = PushWindowDefault
	}
	if c.PushWindow < 1 {
		return bad("PushWindow %d is below 1", c.PushWindow)
	}
	if c.Keep < 0 {
		return bad("Keep %d is negative", c.Keep)
	}
	if c.NOKRate < 0 || c.NOKRate > 1 {
		return bad("NOKRate %v is outside 0..1", c.NOKRate)
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

func (p Pset) check(id int) error {
	switch {
	case id < 1 || id > 999:
		return fmt.Errorf("id %d is outside 1..999", id)
	case len(p.Name) > nameLen:
		return fmt.Errorf("Name is longer than %d characters", nameLen)
	case !(p.TorqueMin > 0 && p.TorqueMin <= p.TorqueTarget && p.TorqueTarget <= p.TorqueMax && centi(p.TorqueMax) <= centiMax):
		return fmt.Errorf("torque %v <= %v <= %v does not hold within 0 < torque <= 9999.99 N·m", p.TorqueMin, p.TorqueTarget, p.TorqueMax)
	case !(p.AngleMin >= 0 && p.AngleMin <= p.AngleTarget && p.AngleTarget <= p.AngleMax && p.AngleMax <= angleMax):
		return fmt.Errorf("angle %d <= %d <= %d does not hold within 0..%d degrees", p.AngleMin, p.AngleTarget, p.AngleMax, angleMax)
	case p.BatchSize < 0 || p.BatchSize > 9999:
		return fmt.Errorf("BatchSize %d is outside 0..9999", p.BatchSize)
	case p.Strategy < 0 || p.Strategy > 99:
		return fmt.Errorf("Strategy %d is outside 0..99", p.Strategy)
	}
	return nil
}

// centi is a torque in hundredths of N·m, as the protocol sends it.
func centi(nm float64) int { return int(nm*100 + 0.5) }
