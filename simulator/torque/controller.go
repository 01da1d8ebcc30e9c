package torque

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"
)

// Errors of Tighten and the controller's lifecycle.
var (
	// ErrToolDisabled: the tool is disabled (MID 0042, or never enabled);
	// it does not tighten.
	ErrToolDisabled = errors.New("tool disabled")
	// ErrNoPset: no parameter set is selected, or the tool has not the
	// selected one.
	ErrNoPset = errors.New("no parameter set selected for the tool")
	// ErrUnknownChannel: the controller has no tool on that channel.
	ErrUnknownChannel = errors.New("no tool on that channel")
	// ErrNotRunning: the controller is stopped (not started, or restarting).
	ErrNotRunning = errors.New("controller not running")
)

// Faults are failures a test injects into the link to the client.
type Faults struct {
	// SplitWrites, when above 0, writes every frame in pieces of at most
	// this many bytes, one write each.
	SplitWrites int
	// MergeWrites, when above 1, gathers up to this many frames into one
	// write (waiting at most MergeLinger for them).
	MergeWrites int
	// ReplyDelay holds every frame this long before it is written.
	ReplyDelay time.Duration
	// Silent drops every frame the controller would send: to the client it
	// is a controller that no longer answers.
	Silent bool
	// DropAcks ignores every MID 0062 the client sends, as if it never
	// arrived: the results stay unacknowledged (a client that died between
	// making a result durable and acknowledging it).
	DropAcks bool
}

// Controller is a simulated tightening controller speaking the Open
// Protocol on TCP: one client at a time, as real controllers. See the
// package documentation for what it does and how a test drives it.
type Controller struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	running  bool
	addr     string // bound address, kept across restarts
	ln       net.Listener
	wg       sync.WaitGroup
	link     *link             // the client, nil when none
	refusing map[net.Conn]bool // second clients being refused
	faults   Faults
	st       state
	byID     map[uint32]int // index in st.results
	store    *store
	received map[int]int
	accepts  int
	resends  int
}

// New checks cfg and returns a stopped controller. The error names the bad
// config field.
func New(cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Controller{
		cfg:      cfg,
		log:      cfg.Logger.With("controller", cfg.Name),
		addr:     cfg.Addr,
		received: map[int]int{},
		refusing: map[net.Conn]bool{},
	}
	c.st = newState(cfg.Enabled)
	c.byID = map[uint32]int{}
	return c, nil
}

// Start loads the state from StateDir (if set; without it the controller
// keeps what it had in memory) and listens for a client. It returns an
// error if the controller runs already, if the state does not load, or if
// the address cannot be listened on (nothing is left running then).
func (c *Controller) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return fmt.Errorf("torque controller %s: already running", c.cfg.Name)
	}
	if c.cfg.StateDir != "" {
		s, st, err := openStore(c.cfg.StateDir, c.cfg.Enabled)
		if err != nil {
			return fmt.Errorf("torque controller %s: %w", c.cfg.Name, err)
		}
		c.store, c.st = s, st
		c.byID = map[uint32]int{}
		for i, t := range c.st.results {
			c.byID[t.ID] = i
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", c.addr)
	if err != nil {
		if c.store != nil {
			c.store.close()
			c.store = nil
		}
		return fmt.Errorf("torque controller %s: listen on %s: %w", c.cfg.Name, c.addr, err)
	}
	c.ln, c.addr, c.running = ln, ln.Addr().String(), true
	c.wg.Go(func() { c.accept(ln) })
	c.log.Info("torque controller started", "address", c.addr, "tightenings", len(c.st.results))
	return nil
}

// Stop closes the listener and the client's connection, waits for every
// goroutine of the controller and saves its state. Start may follow (a
// restart). Stop is safe twice and before Start.
func (c *Controller) Stop() error {
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		return nil
	}
	c.running = false
	c.ln.Close()
	l := c.link
	for conn := range c.refusing {
		conn.Close()
	}
	c.mu.Unlock()
	if l != nil {
		l.close(errors.New("controller stopped"))
	}
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if c.store != nil {
		err = errors.Join(c.store.save(c.st), c.store.close())
		c.store = nil
	}
	c.log.Info("torque controller stopped", "tightenings", len(c.st.results))
	return err
}

// Addr is the address the controller listens on (host:port).
func (c *Controller) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
}

// accept serves clients until the listener closes. A client arriving while
// another is connected gets MID 0004 error 96 and is closed.
func (c *Controller) accept(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		if !c.running {
			c.mu.Unlock()
			conn.Close()
			return
		}
		c.accepts++
		busy := c.link != nil
		if busy {
			c.refusing[conn] = true
		} else {
			c.link = newLink(c, conn)
			c.link.start()
		}
		c.mu.Unlock()
		if busy {
			c.wg.Go(func() { c.refuse(conn) })
		}
	}
}

// refuse answers a second client's first message with error 96.
func (c *Controller) refuse(conn net.Conn) {
	defer func() {
		c.mu.Lock()
		delete(c.refusing, conn)
		c.mu.Unlock()
		conn.Close()
	}()
	conn.SetDeadline(time.Now().Add(c.cfg.KeepAliveTimeout))
	m, err := readMessage(bufio.NewReader(conn))
	if err != nil {
		return
	}
	c.log.Info("torque controller: second client refused, another is connected", "remote", conn.RemoteAddr().String())
	conn.Write(errorFrame(m.mid, codeClientConnected))
}

// linkEnded forgets l as the client.
func (c *Controller) linkEnded(l *link) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.link == l {
		c.link = nil
	}
}

// Tighten makes one tightening on the tool of channel, with the selected
// parameter set, for the downloaded VIN (blank if none), and returns it.
// Its values come from the seed, a NOKRate share of them with the torque
// outside the limits. A subscribed client is sent it (MID 0061). It returns
// ErrToolDisabled when the tool is disabled, ErrNoPset, ErrUnknownChannel
// or ErrNotRunning, and then no tightening is made and no id is used.
func (c *Controller) Tighten(ctx context.Context, channel int) (Tightening, error) {
	if err := ctx.Err(); err != nil {
		return Tightening{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fail := func(err error) (Tightening, error) {
		return Tightening{}, fmt.Errorf("torque controller %s: tighten on channel %d: %w", c.cfg.Name, channel, err)
	}
	if !c.running {
		return fail(ErrNotRunning)
	}
	i := slices.IndexFunc(c.cfg.Tools, func(t Tool) bool { return t.Channel == channel })
	if i < 0 {
		return fail(ErrUnknownChannel)
	}
	tool := c.cfg.Tools[i]
	if !c.st.Enabled {
		return fail(ErrToolDisabled)
	}
	ps, ok := tool.Psets[c.st.Pset]
	if !ok {
		return fail(ErrNoPset)
	}
	t := c.tightening(tool, ps)
	if c.store != nil {
		if err := c.store.append(t); err != nil {
			return fail(err)
		}
	}
	c.st.NextID++
	c.st.BatchCounter = t.BatchCounter
	if t.BatchStatus == 1 {
		c.st.BatchCounter = 0
	}
	c.byID[t.ID] = len(c.st.results)
	c.st.results = append(c.st.results, t)
	if l := c.link; l != nil && l.subscribed {
		c.st.Queue = append(c.st.Queue, t.ID)
		l.kick()
	}
	c.saveLocked()
	return t, nil
}

// tightening makes the next tightening's record (not yet kept).
func (c *Controller) tightening(tool Tool, ps Pset) Tightening {
	id := c.st.NextID
	torque, tstat, angle := makeTightening(c.cfg.Seed, c.cfg.NOKRate, id, ps)
	t := Tightening{
		ID: id, Controller: c.cfg.Name, CellID: c.cfg.CellID, Channel: tool.Channel, ToolSerial: tool.Serial,
		VIN: c.st.VIN, Pset: c.st.Pset, PsetName: ps.Name, PsetChanged: c.st.PsetChanged, Strategy: ps.Strategy,
		BatchSize: ps.BatchSize, OK: tstat == 1, TorqueStatus: tstat, AngleStatus: 1,
		TorqueMin: centi(ps.TorqueMin), TorqueMax: centi(ps.TorqueMax), TorqueTarget: centi(ps.TorqueTarget), Torque: torque,
		AngleMin: ps.AngleMin, AngleMax: ps.AngleMax, AngleTarget: ps.AngleTarget, Angle: angle,
		Time: c.cfg.Now().In(c.cfg.Location).Truncate(time.Second),
	}
	if t.Strategy == 0 {
		t.Strategy = 2
	}
	switch tstat {
	case 0:
		t.ErrorStatus = errTorqueLessThanTarget
	case 2:
		t.ErrorStatus = errTorqueMaxShutOff
	}
	t.BatchCounter = c.st.BatchCounter
	switch {
	case ps.BatchSize == 0:
		t.BatchStatus = 2
	case t.OK:
		t.BatchCounter++
		if t.BatchCounter >= ps.BatchSize {
			t.BatchStatus = 1
		}
	}
	return t
}

// Truth returns every tightening the controller made, oldest first.
func (c *Controller) Truth() []Tightening {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.st.results)
}

// BatchCounter is the running batch's count of OK tightenings, as the
// tool's display shows it: 0 after a parameter set is selected and after
// a batch completes.
func (c *Controller) BatchCounter() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.BatchCounter
}

// Last returns the newest tightening the controller made, or false when it
// made none.
func (c *Controller) Last() (Tightening, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.st.results) == 0 {
		return Tightening{}, false
	}
	return c.st.results[len(c.st.results)-1], true
}

// Enabled says whether the tool may tighten.
func (c *Controller) Enabled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Enabled
}

// Pset is the selected parameter set (0: none).
func (c *Controller) Pset() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Pset
}

// VIN is the downloaded VIN.
func (c *Controller) VIN() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.VIN
}

// Stats is what a test reads of the controller's link.
type Stats struct {
	// Connected: a client is connected; Subscribed: to results.
	Connected, Subscribed bool
	// Accepts counts TCP connections accepted (refused ones included).
	Accepts int
	// Unacknowledged counts results waiting to be pushed or acknowledged.
	Unacknowledged int
	// Resends counts results sent again for want of an acknowledge.
	Resends int
	// Received counts the messages received, by MID.
	Received map[int]int
}

// Stats returns a snapshot of the link.
func (c *Controller) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Accepts: c.accepts, Unacknowledged: len(c.st.Queue), Resends: c.resends, Received: map[int]int{}}
	for k, v := range c.received {
		s.Received[k] = v
	}
	if c.link != nil {
		s.Connected, s.Subscribed = true, c.link.subscribed
	}
	return s
}

// SetFaults sets the faults of the link from now on (Faults{} clears them).
func (c *Controller) SetFaults(f Faults) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = f
}

func (c *Controller) currentFaults() Faults {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.faults
}

// CutLink closes the client's connection, as a pulled cable would. It
// reports whether a client was connected.
func (c *Controller) CutLink() bool {
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()
	if l == nil {
		return false
	}
	l.close(errors.New("link cut"))
	return true
}

// SendRaw writes b to the client as it is, after the frames already queued
// (garbage, a malformed frame, a message the client does not know). It
// ignores Silent. It returns an error if no client is connected.
func (c *Controller) SendRaw(b []byte) error {
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()
	if l == nil {
		return fmt.Errorf("torque controller %s: no client connected", c.cfg.Name)
	}
	l.send(slices.Clone(b), true)
	return nil
}

// saveLocked writes the controller state (not the results, which are
// appended as they are made) when it has a state dir.
func (c *Controller) saveLocked() {
	if c.store == nil {
		return
	}
	if err := c.store.save(c.st); err != nil {
		c.log.Error("torque controller: save state", "err", err)
	}
}
