package openprotocol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Defaults and limits of a Config.
const (
	// RevisionMax is the highest MID 0001 revision the client asks.
	RevisionMax = 6
	// RevisionDefault is the MID 0001 revision asked first.
	RevisionDefault = RevisionMax
	// ResultRevisionDefault is the MID 0060 (and 0061) revision asked first.
	ResultRevisionDefault = ResultRevisionMax

	// KeepAliveDefault is how long the client may stay silent before it
	// sends a MID 9999. Controllers drop a link silent for 15 s; Bosch
	// Rexroth's System 350 manual (MID 9999) recommends a message at least
	// every 10 s.
	KeepAliveDefault = 5 * time.Second
	// KeepAliveMin and KeepAliveMax bound KeepAlive.
	KeepAliveMin = 10 * time.Millisecond
	KeepAliveMax = 14 * time.Second

	// ReplyTimeoutDefault is how long the controller has to answer a request.
	ReplyTimeoutDefault = 3 * time.Second
	// ReplyTimeoutMin is the shortest reply timeout allowed.
	ReplyTimeoutMin = 10 * time.Millisecond
	// DialTimeoutDefault bounds one TCP connect.
	DialTimeoutDefault = 5 * time.Second

	// RedialMinDefault and RedialMaxDefault bound the back-off between
	// connection attempts (it doubles from min to max).
	RedialMinDefault = 100 * time.Millisecond
	RedialMaxDefault = 10 * time.Second
	// BusyBackoffDefault is the wait after a controller said another
	// client holds it (error 96).
	BusyBackoffDefault = 10 * time.Second

	// ResultBufferDefault is the capacity of the Results channel.
	ResultBufferDefault = 64
	// CatchUpMaxDefault is the most old results fetched at once
	// (ResultsSince, LastDurable): one MID 0064 each.
	CatchUpMaxDefault = 10000
	// PortDefault is the Open Protocol's usual TCP port.
	PortDefault = 4545
)

// Config configures a Client: one controller, one TCP connection.
type Config struct {
	// ID names the controller to operators (e.g. "C04-T1"). Required.
	ID string
	// Address is the controller's host:port (usually port 4545). Required.
	Address string

	// Revision is the MID 0001 revision asked first; on error 97 the
	// client asks the next lower one, down to MinRevision. Defaults to
	// RevisionDefault; 1..RevisionMax.
	Revision int
	// MinRevision defaults to 1.
	MinRevision int
	// ResultRevision is the MID 0060 revision (the revision of the MID
	// 0061 results) asked first, falling back like Revision down to
	// MinResultRevision. Defaults to ResultRevisionDefault;
	// 1..ResultRevisionMax.
	ResultRevision int
	// MinResultRevision defaults to 1.
	MinResultRevision int

	// KeepAlive is the longest the client stays silent: it sends a MID 9999
	// when it sent nothing for this long. Defaults to KeepAliveDefault;
	// KeepAliveMin..KeepAliveMax.
	KeepAlive time.Duration
	// ReplyTimeout is how long the controller has to answer a request
	// (MID 9999 included); past it the link is dead and redialed. Defaults
	// to ReplyTimeoutDefault.
	ReplyTimeout time.Duration
	// DialTimeout bounds a TCP connect. Defaults to DialTimeoutDefault.
	DialTimeout time.Duration
	// RedialMin and RedialMax bound the back-off between connection
	// attempts. Default to RedialMinDefault and RedialMaxDefault.
	RedialMin, RedialMax time.Duration
	// BusyBackoff is the wait before redialing a controller that said
	// another client holds it. Defaults to BusyBackoffDefault.
	BusyBackoff time.Duration
	// MaxFrameLength is the longest frame accepted (header and data);
	// anything longer is a malformed frame. Defaults to FrameLengthMax.
	MaxFrameLength int

	// Location is the controller's time zone: its timestamps are local
	// time without a zone. Defaults to time.Local.
	Location *time.Location
	// ResultBuffer is the capacity of the Results channel. Defaults to
	// ResultBufferDefault.
	ResultBuffer int
	// LastDurable, when set, is asked after every connect for the id of
	// the last tightening the caller made durable; the client then fetches
	// the newer ones the controller kept (MID 0064, see ResultsSince) and
	// delivers them on Results, so results made while the link was down
	// arrive too. 0 means the caller has none yet: nothing is fetched.
	LastDurable func(ctx context.Context) (uint32, error)
	// CatchUpMax is the most old results ResultsSince fetches; older ids
	// are reported skipped. Defaults to CatchUpMaxDefault.
	CatchUpMax int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Validate checks the config and fills its defaults. The error names the
// bad field and the values allowed.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("openprotocol config of controller %q: %s", c.ID, fmt.Sprintf(format, args...))
	}
	if c.ID == "" {
		return errors.New("openprotocol config: ID is required")
	}
	if c.Address == "" {
		return bad("Address is required (host:port, usually port %d)", PortDefault)
	}
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		return bad("Address %q is not host:port: %v", c.Address, err)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Revision, RevisionDefault)
	def(&c.MinRevision, 1)
	def(&c.ResultRevision, ResultRevisionDefault)
	def(&c.MinResultRevision, 1)
	if c.Revision < 1 || c.Revision > RevisionMax {
		return bad("Revision %d is outside 1..%d", c.Revision, RevisionMax)
	}
	if c.MinRevision < 1 || c.MinRevision > c.Revision {
		return bad("MinRevision %d is outside 1..Revision (%d)", c.MinRevision, c.Revision)
	}
	if c.ResultRevision < 1 || c.ResultRevision > ResultRevisionMax {
		return bad("ResultRevision %d is outside 1..%d", c.ResultRevision, ResultRevisionMax)
	}
	if c.MinResultRevision < 1 || c.MinResultRevision > c.ResultRevision {
		return bad("MinResultRevision %d is outside 1..ResultRevision (%d)", c.MinResultRevision, c.ResultRevision)
	}
	defd(&c.KeepAlive, KeepAliveDefault)
	if c.KeepAlive < KeepAliveMin || c.KeepAlive > KeepAliveMax {
		return bad("KeepAlive %v is outside %v..%v (controllers drop a link silent for 15 s)", c.KeepAlive, KeepAliveMin, KeepAliveMax)
	}
	defd(&c.ReplyTimeout, ReplyTimeoutDefault)
	if c.ReplyTimeout < ReplyTimeoutMin {
		return bad("ReplyTimeout %v is below %v", c.ReplyTimeout, ReplyTimeoutMin)
	}
	defd(&c.DialTimeout, DialTimeoutDefault)
	defd(&c.RedialMin, RedialMinDefault)
	defd(&c.RedialMax, RedialMaxDefault)
	defd(&c.BusyBackoff, BusyBackoffDefault)
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DialTimeout", c.DialTimeout}, {"RedialMin", c.RedialMin}, {"RedialMax", c.RedialMax}, {"BusyBackoff", c.BusyBackoff}} {
		if d.v < 0 {
			return bad("%s %v is negative", d.name, d.v)
		}
	}
	if c.RedialMax < c.RedialMin {
		return bad("RedialMax %v is below RedialMin %v", c.RedialMax, c.RedialMin)
	}
	def(&c.MaxFrameLength, FrameLengthMax)
	if c.MaxFrameLength < HeaderLen || c.MaxFrameLength > FrameLengthMax {
		return bad("MaxFrameLength %d is outside %d..%d", c.MaxFrameLength, HeaderLen, FrameLengthMax)
	}
	def(&c.ResultBuffer, ResultBufferDefault)
	if c.ResultBuffer < 0 {
		return bad("ResultBuffer %d is negative", c.ResultBuffer)
	}
	def(&c.CatchUpMax, CatchUpMaxDefault)
	if c.CatchUpMax < 1 {
		return bad("CatchUpMax %d is below 1", c.CatchUpMax)
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
