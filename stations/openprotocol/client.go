package openprotocol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// VINLength is the length of MID 0050's VIN field.
const VINLength = 25

var (
	metricResults = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_openprotocol_results_total", Help: "Tightening results received (MID 0061), duplicates excluded.",
	}, []string{"controller"})
	metricAcks = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_openprotocol_acks_total", Help: "Tightening results acknowledged to the controller (MID 0062).",
	}, []string{"controller"})
	metricLinkErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_openprotocol_link_errors_total", Help: "Failed connection attempts and links ended by an error.",
	}, []string{"controller"})
	metricBadResults = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_openprotocol_bad_results_total", Help: "Tightening results that did not parse (not acknowledged).",
	}, []string{"controller"})
)

// Status is a snapshot of a client's link.
type Status struct {
	// Connected is true between a completed handshake (communication start
	// and result subscription) and the end of that connection.
	Connected bool
	// Info is what the controller said at the last communication start.
	Info Info
	// ResultRevision is the MID 0061 revision subscribed (0: none).
	ResultRevision int
	// Connects counts completed handshakes.
	Connects int
	// LastError is why the last connection attempt failed or the last link
	// ended (nil before any).
	LastError error
	// Duplicates counts results the controller sent again on a connection
	// that had delivered them already (not delivered twice).
	Duplicates int
	// BadResults counts results that did not parse (not acknowledged).
	BadResults int
}

// Client is an Open Protocol client of one tightening controller. Run keeps
// one connection open (redialing as needed), subscribed to the last
// tightening result; results arrive on Results and the caller acknowledges
// each with Ack once it is durable. Commands wait for a connection.
type Client struct {
	cfg     Config
	log     *slog.Logger
	results chan Result

	mu          sync.Mutex
	cur         *session      // the connection in use, handshaking or not
	ready       bool          // cur completed its handshake
	changed     chan struct{} // closed and replaced when cur or ready change
	status      Status
	running     bool
	closed      bool
	cancel      context.CancelFunc
	done        chan struct{}
	gen         uint64
	unknown     map[int]bool
	wantResults bool
	closeOnce   sync.Once
	mResults    prometheus.Counter
	mAcks       prometheus.Counter
}

// New checks cfg and returns a client that does nothing until Run. The
// error names the bad config field.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{
		cfg:         cfg,
		log:         cfg.Logger.With("controller", cfg.ID, "address", cfg.Address),
		results:     make(chan Result, cfg.ResultBuffer),
		changed:     make(chan struct{}),
		done:        make(chan struct{}),
		unknown:     map[int]bool{},
		wantResults: true,
		mResults:    metricResults.WithLabelValues(cfg.ID),
		mAcks:       metricAcks.WithLabelValues(cfg.ID),
	}, nil
}

// ID is the configured controller id.
func (c *Client) ID() string { return c.cfg.ID }

// Results delivers the tightening results, in the controller's order: MID
// 0061s pushed by the controller and, after a reconnect, MID 0065s fetched
// for Config.LastDurable. The same tightening may arrive more than once
// (the controller resends an unacknowledged result on the next
// connection): dedup by TighteningID. Read it promptly: while it is full
// the connection is not read, and a request waiting for its answer times
// out (the link is then redialed). The channel is closed when Run returns.
func (c *Client) Results() <-chan Result { return c.results }

// Status returns a snapshot of the link.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Run connects to the controller and keeps the link up until ctx is done or
// Close is called: it redials with back-off after any failure (longer
// after error 96, another client holds the controller), logging why, and
// says MID 0003 on the way out. It returns nil then; ErrClosed if the
// client was closed before; an error if Run was called before. Every
// goroutine it starts has returned when it does.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return c.errorf("run: %w", ErrClosed)
	case c.running:
		c.mu.Unlock()
		return c.errorf("run: already running")
	}
	c.running = true
	ctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	c.mu.Unlock()
	defer func() {
		cancel()
		c.mu.Lock()
		c.closed = true
		c.notifyLocked()
		c.mu.Unlock()
		c.closeResults()
		close(c.done)
	}()

	wait := c.cfg.RedialMin
	for {
		handshook, err := c.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		metricLinkErrors.WithLabelValues(c.cfg.ID).Inc()
		if handshook {
			wait = c.cfg.RedialMin
		}
		delay := wait
		if errors.Is(err, ErrClientAlreadyConnected) {
			delay = max(delay, c.cfg.BusyBackoff)
			c.log.Warn("openprotocol: another client holds the controller (MID 0004 error 96); redialing after a back-off",
				"err", err, "retry_in", delay)
		} else {
			c.log.Warn("openprotocol: link to the controller down; redialing", "err", err, "retry_in", delay)
		}
		if !sleep(ctx, delay) {
			return nil
		}
		if !handshook {
			wait = min(2*wait, c.cfg.RedialMax)
		}
	}
}

// Close stops Run, saying MID 0003 to the controller, and waits for it to
// return. It is safe to call twice, and before Run (Run then returns
// ErrClosed).
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	running, cancel := c.running, c.cancel
	c.notifyLocked()
	c.mu.Unlock()
	if running {
		cancel()
		<-c.done
	} else {
		c.closeResults()
	}
	return nil
}

func (c *Client) closeResults() { c.closeOnce.Do(func() { close(c.results) }) }

// connect runs one connection: dial, communication start, subscription,
// then keep-alive until the link fails or ctx ends. It says whether the
// handshake completed and why the connection ended.
func (c *Client) connect(ctx context.Context) (handshook bool, err error) {
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Address)
	if err != nil {
		err = c.errorf("dial: %w", err)
		c.setLastError(err)
		return false, err
	}
	c.mu.Lock()
	c.gen++
	s := newSession(ctx, c, conn, c.gen)
	c.cur = s
	want := c.wantResults
	c.mu.Unlock()
	s.wg.Go(s.readLoop)
	s.wg.Go(s.ackLoop)
	defer func() {
		s.fail(fmt.Errorf("%w: connection closed", ErrLinkLost))
		s.wg.Wait()
		c.mu.Lock()
		c.cur, c.ready = nil, false
		c.status.Connected = false
		c.status.LastError = err
		c.notifyLocked()
		c.mu.Unlock()
	}()

	if err := s.start(ctx); err != nil {
		return false, c.errorf("communication start: %w", err)
	}
	if want {
		if err := s.subscribe(ctx); err != nil {
			return false, c.errorf("subscribe to tightening results: %w", err)
		}
	}
	c.mu.Lock()
	c.ready = true
	c.status.Connected = true
	c.status.Connects++
	c.status.Info = s.info
	c.status.ResultRevision = int(s.resultRev.Load())
	c.notifyLocked()
	c.mu.Unlock()
	c.log.Info("openprotocol: connected", "revision", s.info.Revision, "result_revision", s.resultRev.Load(),
		"controller_name", s.info.ControllerName, "cell", s.info.CellID, "channel", s.info.ChannelID)

	s.wg.Go(s.keepAlive)
	if c.cfg.LastDurable != nil && s.resultRev.Load() > 0 {
		s.wg.Go(s.catchUp)
	}
	select {
	case <-s.done:
		return true, c.errorf("%w", s.err)
	case <-ctx.Done():
		s.stop(ctx)
		return true, nil
	}
}

func (c *Client) setLastError(err error) {
	c.mu.Lock()
	c.status.LastError = err
	c.mu.Unlock()
}

func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// session waits for a connection that completed its handshake.
func (c *Client) session(ctx context.Context) (*session, error) {
	for {
		c.mu.Lock()
		s, ready, closed, ch := c.cur, c.ready, c.closed, c.changed
		c.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case s != nil && ready:
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a connection: %w", ctx.Err())
		}
	}
}

// errorf formats an error that names the controller.
func (c *Client) errorf(format string, args ...any) error {
	return fmt.Errorf("controller %s (%s): %w", c.cfg.ID, c.cfg.Address, fmt.Errorf(format, args...))
}

// Ack acknowledges r to the controller (MID 0062): call it once r is
// durable, for every result received, duplicates included. The
// acknowledge is written right after Ack returns (several waiting go out
// in one write). The controller
// keeps an unacknowledged result and sends it again (after its timeout, or
// on the next connection). MID 0062 acknowledges the oldest unacknowledged
// result of the connection, so an Ack takes effect once every result
// delivered before r is acknowledged too. Ack of a MID 0065 result, or a
// second Ack, does nothing. It returns an error that is ErrLinkLost when
// r's connection has ended: the controller sends r again on the next one.
func (c *Client) Ack(ctx context.Context, r Result) error {
	if r.MID != midResult {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return c.errorf("acknowledge tightening %d: %w", r.TighteningID, err)
	}
	c.mu.Lock()
	s := c.cur
	c.mu.Unlock()
	if s == nil || s.gen != r.gen {
		return c.errorf("acknowledge tightening %d: %w (it will be sent again)", r.TighteningID, ErrLinkLost)
	}
	if err := s.ack(r.TighteningID); err != nil {
		return c.errorf("acknowledge tightening %d: %w", r.TighteningID, err)
	}
	return nil
}

// command sends a command that the controller answers with MID 0005 or
// MID 0004.
func (c *Client) command(ctx context.Context, what string, f Frame) error {
	s, err := c.session(ctx)
	if err != nil {
		return c.errorf("%s: %w", what, err)
	}
	if _, err := s.request(ctx, f, 0); err != nil {
		return c.errorf("%s: %w", what, err)
	}
	return nil
}

// SelectPset selects parameter set pset (MID 0018, 0..999). It returns a
// *CommandError if the controller refuses (error 02: the controller has no
// such parameter set).
func (c *Client) SelectPset(ctx context.Context, pset int) error {
	if pset < 0 || pset > 999 {
		return c.errorf("select parameter set %d: outside 0..999", pset)
	}
	return c.command(ctx, fmt.Sprintf("select parameter set %d", pset),
		Frame{MID: midSelectPset, Data: appendDigits(nil, pset, 3)})
}

// DisableTool disables the tool (MID 0042): it cannot tighten until
// EnableTool.
func (c *Client) DisableTool(ctx context.Context) error {
	return c.command(ctx, "disable tool", Frame{MID: midDisableTool})
}

// EnableTool enables the tool (MID 0043).
func (c *Client) EnableTool(ctx context.Context) error {
	return c.command(ctx, "enable tool", Frame{MID: midEnableTool})
}

// DownloadVIN gives the controller the VIN of the car at the station (MID
// 0050); its next results carry it. The VIN must be printable ASCII of at
// most VINLength characters.
func (c *Client) DownloadVIN(ctx context.Context, vin string) error {
	if len(vin) > VINLength {
		return c.errorf("download VIN %q: longer than %d characters", vin, VINLength)
	}
	for i := 0; i < len(vin); i++ {
		if vin[i] < 0x20 || vin[i] > 0x7e {
			return c.errorf("download VIN %q: character %d is not printable ASCII", vin, i)
		}
	}
	data := make([]byte, VINLength)
	copy(data, vin)
	for i := len(vin); i < VINLength; i++ {
		data[i] = ' '
	}
	return c.command(ctx, fmt.Sprintf("download VIN %s", vin), Frame{MID: midVIN, Data: data})
}

// Subscribe subscribes to the last tightening result (MID 0060), as every
// connect does unless Unsubscribe was called. A subscription that exists
// already is not an error.
func (c *Client) Subscribe(ctx context.Context) error {
	c.mu.Lock()
	c.wantResults = true
	c.mu.Unlock()
	s, err := c.session(ctx)
	if err != nil {
		return c.errorf("subscribe to tightening results: %w", err)
	}
	if err := s.subscribe(ctx); err != nil {
		return c.errorf("subscribe to tightening results: %w", err)
	}
	c.mu.Lock()
	c.status.ResultRevision = int(s.resultRev.Load())
	c.mu.Unlock()
	return nil
}

// Unsubscribe ends the result subscription (MID 0063); later connects do
// not subscribe until Subscribe. It returns a *CommandError (error 10) if
// there was no subscription.
func (c *Client) Unsubscribe(ctx context.Context) error {
	c.mu.Lock()
	c.wantResults = false
	c.mu.Unlock()
	if err := c.command(ctx, "unsubscribe from tightening results", Frame{MID: midResultUnsub}); err != nil {
		return err
	}
	c.mu.Lock()
	if c.cur != nil {
		c.cur.resultRev.Store(0)
	}
	c.status.ResultRevision = 0
	c.mu.Unlock()
	return nil
}

// OldResult fetches the result of tightening id from the controller's
// memory (MID 0064, answered by MID 0065); id 0 asks for the newest. It
// returns an error that is ErrTighteningNotFound when the controller keeps
// no such tightening.
func (c *Client) OldResult(ctx context.Context, id uint32) (Result, error) {
	s, err := c.session(ctx)
	if err != nil {
		return Result{}, c.errorf("fetch tightening %d: %w", id, err)
	}
	r, err := s.oldResult(ctx, id)
	if err != nil {
		return r, c.errorf("fetch tightening %d: %w", id, err)
	}
	return r, nil
}

// ResultsSince fetches the results of every tightening after id after, up
// to the newest, oldest first (MID 0064, one request per tightening, at
// most Config.CatchUpMax): the results made while the link was down, for a caller
// that knows the last tightening it made durable. Ids the controller no
// longer keeps are skipped: the error is then a *NotFoundError listing
// them, with the results found.
func (c *Client) ResultsSince(ctx context.Context, after uint32) ([]Result, error) {
	s, err := c.session(ctx)
	if err != nil {
		return nil, c.errorf("fetch tightenings after %d: %w", after, err)
	}
	rs, err := s.resultsSince(ctx, after)
	if err != nil {
		return rs, c.errorf("fetch tightenings after %d: %w", after, err)
	}
	return rs, nil
}

// Do sends f, a request this package has no method for, and returns the
// controller's answer: the reply frame (MID 0005 for a command) or a
// *CommandError for a MID 0004. The answer is told from unsolicited
// messages by its MID: reply is the MID of the reply expected besides
// 0004/0005 (0 for none).
func (c *Client) Do(ctx context.Context, f Frame, reply int) (Frame, error) {
	if f.MID < 1 || f.MID > 9999 || len(f.Data) > FrameLengthMax-HeaderLen {
		return Frame{}, c.errorf("MID %d with %d bytes of data: not a frame (MID 1..9999, data at most %d bytes)",
			f.MID, len(f.Data), FrameLengthMax-HeaderLen)
	}
	s, err := c.session(ctx)
	if err != nil {
		return Frame{}, c.errorf("%s: %w", midString(f.MID), err)
	}
	rf, err := s.request(ctx, f, reply)
	if err != nil {
		return rf, c.errorf("%s: %w", midString(f.MID), err)
	}
	return rf, nil
}

// unknownMID logs a MID the client does not handle, once per MID.
func (c *Client) unknownMID(f Frame) {
	c.mu.Lock()
	seen := c.unknown[f.MID]
	c.unknown[f.MID] = true
	c.mu.Unlock()
	if !seen {
		c.log.Warn("openprotocol: unknown MID received, ignored (logged once)", "mid", f.MID, "revision", f.Revision)
	}
}

func (c *Client) duplicate(id uint32) {
	c.mu.Lock()
	c.status.Duplicates++
	c.mu.Unlock()
	c.log.Debug("openprotocol: result sent again, already delivered on this connection", "tightening_id", id)
}

func (c *Client) badResult(err error, f Frame) {
	c.mu.Lock()
	c.status.BadResults++
	c.mu.Unlock()
	metricBadResults.WithLabelValues(c.cfg.ID).Inc()
	c.log.Error("openprotocol: tightening result does not parse; not acknowledged, the controller keeps it",
		"err", err, "frame", string(f.Raw[:max(len(f.Raw)-1, 0)]))
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
