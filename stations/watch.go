package stations

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/line"
)

// Watch defaults.
const (
	// WatchIntervalDefault is how often `keiline plc watch` reads the PLC.
	WatchIntervalDefault = 250 * time.Millisecond
	// HeartbeatStale is how long an unchanged Heartbeat is still alive
	// (the PLC increments it once a second).
	HeartbeatStale = 3 * time.Second
	// AckStale is how long a state may last before watch hints at a cause.
	AckStale = 2 * time.Second
)

// Handshake is the state of a station's handshake (docs/plc-handshake.md)
// as watch decodes it from one read of the station's tags.
type Handshake int

const (
	// HandshakeUnknown: the handshake tags could not be read.
	HandshakeUnknown Handshake = iota
	// HandshakeWaiting: no result waits (DataReady false).
	HandshakeWaiting
	// HandshakeDataReady: a result waits for the MES (DataReady true,
	// AckCounter behind CycleCounter).
	HandshakeDataReady
	// HandshakeAcknowledged: the MES acknowledged the result shown
	// (AckCounter = CycleCounter) and the PLC has yet to clear DataReady or
	// show its next result.
	HandshakeAcknowledged
	// HandshakeBlocked: the PLC holds its car because too many results
	// wait (State blocked, or fault 900).
	HandshakeBlocked
)

func (h Handshake) String() string {
	return [...]string{"UNKNOWN", "WAITING FOR DATA", "DATA READY", "ACKNOWLEDGED", "BLOCKED"}[h]
}

// WatchTag is one tag's line on the watch screen.
type WatchTag struct {
	Tag, Node string
	// Value is the value as shown ("" when Bad is set).
	Value string
	// Bad says why the value cannot be used: bad quality or wrong type.
	Bad string
}

// WatchFrame is one screen of `keiline plc watch`.
type WatchFrame struct {
	Station, Endpoint string
	At                time.Time
	Interval          time.Duration
	// Err is set when the PLC could not be read; the rest is then empty.
	Err string

	Handshake Handshake
	// Detail explains the handshake state with the counters.
	Detail string
	// Since is when the handshake entered its state (as far as watch saw).
	Since time.Time

	State, FaultText, VIN string
	FaultCode             int64
	Andon                 bool
	Heartbeat             string
	// HeartbeatAge is how long the Heartbeat has not changed.
	HeartbeatAge time.Duration

	// Refused is set when the agent would refuse the cycle shown (and
	// leave it unacknowledged): what the record objects to and what fixes
	// it.
	Refused string

	Tags []WatchTag
}

// decodeHandshake decodes the handshake state of a snapshot.
func decodeHandshake(s *snapshot) (Handshake, string) {
	for _, t := range []string{"CycleCounter", "DataReady", "AckCounter"} {
		if b, ok := s.bad[t]; ok {
			return HandshakeUnknown, fmt.Sprintf("%s (node %s): %s", t, b.NodeID, b.Reason)
		}
	}
	cycle, ack, ready := s.int("CycleCounter"), s.int("AckCounter"), s.boolean("DataReady")
	if s.str("State") == "blocked" || s.int("FaultCode") == 900 {
		d := "the PLC holds its car: its results wait for the MES"
		if ready && ack != cycle {
			d += fmt.Sprintf("; cycle %d is shown, AckCounter is %d", cycle, ack)
		}
		return HandshakeBlocked, d
	}
	switch {
	case !ready && ack == cycle:
		return HandshakeWaiting, fmt.Sprintf("no result waits; cycle %d was the last acknowledged", cycle)
	case !ready:
		return HandshakeWaiting, fmt.Sprintf("no result waits; CycleCounter %d, AckCounter %d", cycle, ack)
	case ack == cycle:
		return HandshakeAcknowledged, fmt.Sprintf("the MES acknowledged cycle %d; the PLC has yet to clear DataReady or show its next result", cycle)
	}
	return HandshakeDataReady, fmt.Sprintf("cycle %d waits for the MES; AckCounter is %d", cycle, ack)
}

// RenderWatch returns the screen text of a frame: a header with the
// handshake state decoded and the station's state, then every tag with its
// node and value.
func RenderWatch(f WatchFrame) string {
	var b strings.Builder
	fmt.Fprintf(&b, "station %s  %s  %s  every %s\n", f.Station, f.Endpoint, f.At.Format("2006-01-02 15:04:05.000"), f.Interval)
	if f.Err != "" {
		fmt.Fprintf(&b, "\nno connection: %s\n", f.Err)
		return b.String()
	}
	fmt.Fprintf(&b, "handshake  %s  %s", f.Handshake, f.Detail)
	if !f.Since.IsZero() {
		age := f.At.Sub(f.Since)
		fmt.Fprintf(&b, "  (for %s)", age.Round(100*time.Millisecond))
		if age >= AckStale {
			switch f.Handshake {
			case HandshakeDataReady:
				b.WriteString("  — is an agent running for this station?")
			case HandshakeAcknowledged:
				b.WriteString("  — is the PLC reading AckCounter?")
			}
		}
	}
	b.WriteString("\n")
	if f.Refused != "" {
		fmt.Fprintf(&b, "REFUSED    the agent will not acknowledge: %s\n", f.Refused)
	}
	andon := "no"
	if f.Andon {
		andon = "CALLED"
	}
	alive := "alive"
	if f.HeartbeatAge >= HeartbeatStale {
		alive = fmt.Sprintf("STALE for %s", f.HeartbeatAge.Round(time.Second))
	}
	fmt.Fprintf(&b, "state      %s  fault %d", orDash(f.State), f.FaultCode)
	if f.FaultText != "" {
		fmt.Fprintf(&b, " %q", f.FaultText)
	}
	fmt.Fprintf(&b, "  andon %s  heartbeat %s (%s)  VIN present %s\n\n", andon, orDash(f.Heartbeat), alive, orDash(f.VIN))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TAG\tNODE\tVALUE")
	for _, t := range f.Tags {
		v := t.Value
		if t.Bad != "" {
			v = "BAD: " + t.Bad
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Tag, t.Node, v)
	}
	tw.Flush()
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Watcher reads a station's tags for watch and keeps what it needs across
// reads: since when the handshake is in its state and when the heartbeat
// last changed. It never writes to the PLC.
type Watcher struct {
	lc       *line.Config
	st       *line.Station
	plan     *readPlan
	interval time.Duration

	plc         *PLC
	state       Handshake
	since       time.Time
	heartbeat   string
	heartbeatAt time.Time
}

// NewWatcher returns a watcher of station st of the validated config line.
func NewWatcher(lc *line.Config, st *line.Station, interval time.Duration) *Watcher {
	plan, _ := newReadPlan(st, st.Tags()) // the config is validated
	return &Watcher{lc: lc, st: st, plan: plan, interval: interval}
}

// Frame reads the station once (dialing the PLC when not connected) and
// returns the frame to show. A failed read is shown in the frame and the
// PLC is dialed again next time.
func (w *Watcher) Frame(ctx context.Context, now time.Time) WatchFrame {
	f := WatchFrame{Station: w.st.ID, Endpoint: w.st.Endpoint, At: now, Interval: w.interval}
	if w.plc == nil {
		plc, err := DialPLC(ctx, ConnectionOf(w.lc, w.st))
		if err != nil {
			f.Err = err.Error()
			return f
		}
		w.plc = plc
	}
	dvs, err := w.plc.readValues(ctx, w.plan.reads)
	if err != nil {
		err = readLimitHint(ctx, err, w.plc, w.lc, w.st)
		_ = w.plc.Close(ctx)
		w.plc = nil
		f.Err = err.Error()
		return f
	}
	return w.frame(f, w.plan.decode(dvs), dvs)
}

// frame fills f from a snapshot and its DataValues, updating the watcher's
// memory of states.
func (w *Watcher) frame(f WatchFrame, snap *snapshot, dvs []*ua.DataValue) WatchFrame {
	f.Handshake, f.Detail = decodeHandshake(snap)
	if f.Handshake != w.state || w.since.IsZero() {
		w.state, w.since = f.Handshake, f.At
	}
	f.Since = w.since
	f.State, f.FaultText, f.VIN = snap.str("State"), snap.str("FaultText"), snap.str("VinPresent")
	f.FaultCode, f.Andon = snap.int("FaultCode"), snap.boolean("Andon")
	if snap.good("Heartbeat") {
		f.Heartbeat = strconv.FormatInt(snap.int("Heartbeat"), 10)
	}
	if f.Heartbeat != w.heartbeat || w.heartbeatAt.IsZero() {
		w.heartbeat, w.heartbeatAt = f.Heartbeat, f.At
	}
	f.HeartbeatAge = f.At.Sub(w.heartbeatAt)
	if counter, reason := snap.counter("CycleCounter"); snap.boolean("DataReady") && reason == "" {
		if ev, err := makeCycleEvent(w.lc, w.st, snap, 0, counter, f.At, f.At); err == nil {
			if err := ev.ValidateFor(w.lc.Identity); err != nil {
				f.Refused = refusalText(w.lc, w.st, snap, counter, err)
			}
		}
	}
	for _, tag := range w.plan.tags {
		wt := WatchTag{Tag: tag, Node: w.st.Nodes[tag].Where()}
		var dv *ua.DataValue
		if i, ok := w.plan.at[tag]; ok {
			dv = dvs[i]
		}
		switch {
		case snap.absent[tag]:
			wt.Value = "(absent)"
		case snap.bad[tag].Reason != "":
			wt.Bad = snap.bad[tag].Reason
		default:
			wt.Value = showValue(snap.values[tag], dv)
		}
		f.Tags = append(f.Tags, wt)
	}
	return f
}

// showValue formats a tag value: strings quoted, Unix milliseconds of the
// time tags with their UTC time.
func showValue(v any, dv *ua.DataValue) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case int64:
		if dv != nil && dv.Value != nil && dv.Value.Type() == ua.TypeIDInt64 && x > 1e12 {
			return fmt.Sprintf("%d (%s)", x, msTime(x).Format("2006-01-02 15:04:05.000Z"))
		}
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// Close closes the watcher's connection.
func (w *Watcher) Close(ctx context.Context) error {
	err := w.plc.Close(ctx)
	w.plc = nil
	return err
}

// Watch shows a frame of station st every interval until ctx is done. It
// only reads from the PLC. It returns nil when ctx is done.
func Watch(ctx context.Context, lc *line.Config, st *line.Station, interval time.Duration, show func(WatchFrame)) error {
	if interval <= 0 {
		interval = WatchIntervalDefault
	}
	w := NewWatcher(lc, st, interval)
	defer w.Close(ctx)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		show(w.Frame(ctx, time.Now()))
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
