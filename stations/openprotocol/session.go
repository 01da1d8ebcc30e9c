package openprotocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// MIDs of the messages the client sends or expects.
const (
	midCommStart        = 1
	midCommStartAck     = 2
	midCommStop         = 3
	midCommandError     = 4
	midCommandAccepted  = 5
	midSelectPset       = 18
	midDisableTool      = 42
	midEnableTool       = 43
	midVIN              = 50
	midResultSubscribe  = 60
	midResult           = 61
	midResultAck        = 62
	midResultUnsub      = 63
	midOldResultRequest = 64
	midOldResult        = 65
	midKeepAlive        = 9999
)

// recentAcked is how many acknowledged tightening ids a session remembers
// to recognise a result the controller sends again.
const recentAcked = 256

// session is one TCP connection to the controller, from dial to close.
type session struct {
	c    *Client
	conn net.Conn
	gen  uint64
	log  *slog.Logger
	ctx  context.Context // ends with the session

	sem     chan struct{} // held by the one request waiting for its reply
	pmu     sync.Mutex
	pending *pending

	wmu      sync.Mutex
	wbuf     []byte
	lastSent atomic.Int64 // unix nanoseconds of the last write

	amu      sync.Mutex
	inflight []inflight // delivered MID 0061s awaiting the caller's Ack, in order
	recent   []uint32   // ring of the last acknowledged ids
	next     int
	acks     atomic.Int64  // MID 0062s to write
	ackKick  chan struct{} // wakes ackLoop

	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}
	err    error // why the session ended; set before done is closed
	wg     sync.WaitGroup

	info      Info
	resultRev atomic.Int32 // the subscribed MID 0061 revision; 0 when not subscribed
	oldRev    atomic.Int32 // the MID 0064 revision the controller accepts; 0 until known
}

type inflight struct {
	id    uint32
	acked bool
	bad   bool // a result that did not parse: never acknowledged
}

// pending is a request waiting for its reply.
type pending struct {
	mid, rev int
	reply    int // the reply's MID besides 0004/0005 (0 for none)
	ch       chan Frame
	timer    *time.Timer
}

// matches says whether f answers the request.
func (p *pending) matches(f Frame) bool {
	switch f.MID {
	case midCommandError:
		m, _, err := errorReply(f)
		return err != nil || m == p.mid
	case midCommandAccepted:
		m, ok := acceptedMID(f)
		return !ok || m == 0 || m == p.mid
	default:
		return p.reply != 0 && f.MID == p.reply
	}
}

func newSession(ctx context.Context, c *Client, conn net.Conn, gen uint64) *session {
	s := &session{
		c: c, conn: conn, gen: gen, log: c.log,
		sem: make(chan struct{}, 1), done: make(chan struct{}), ackKick: make(chan struct{}, 1),
		recent: make([]uint32, 0, recentAcked),
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.lastSent.Store(time.Now().UnixNano())
	return s
}

// fail ends the session with err (the first error wins) and closes the
// connection, which stops the reader.
func (s *session) fail(err error) {
	s.once.Do(func() {
		s.err = err
		s.cancel()
		close(s.done)
		s.conn.Close()
		s.pmu.Lock()
		if s.pending != nil {
			s.pending.timer.Stop()
		}
		s.pmu.Unlock()
	})
}

// linkErr is the error of a request cut by the end of the session.
func (s *session) linkErr() error {
	<-s.done
	if errors.Is(s.err, ErrLinkLost) || errors.Is(s.err, ErrClosed) {
		return s.err
	}
	return fmt.Errorf("%w: %w", ErrLinkLost, s.err)
}

// write sends one frame.
func (s *session) write(f Frame) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wbuf = f.Append(s.wbuf[:0])
	return s.writeLocked(s.wbuf, f.MID)
}

// writeRaw sends encoded frames of MID mid.
func (s *session) writeRaw(b []byte, mid int) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeLocked(b, mid)
}

func (s *session) writeLocked(b []byte, mid int) error {
	s.conn.SetWriteDeadline(time.Now().Add(s.c.cfg.ReplyTimeout))
	if _, err := s.conn.Write(b); err != nil {
		s.fail(fmt.Errorf("%w: write %s: %w", ErrLinkLost, midString(mid), err))
		return s.linkErr()
	}
	s.lastSent.Store(time.Now().UnixNano())
	return nil
}

// request sends f and waits for its reply: MID 0005, MID 0004 (returned as
// a *CommandError) or the MID reply. A controller that does not answer
// within the reply timeout ends the session with ErrNoReply. When ctx ends
// first the request returns ctx's error; its reply is still awaited (and
// dropped) before the next request goes out.
func (s *session) request(ctx context.Context, f Frame, reply int) (Frame, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	case <-s.done:
		return Frame{}, s.linkErr()
	}
	p := &pending{mid: f.MID, rev: max(f.Revision, 1), reply: reply, ch: make(chan Frame, 1)}
	s.pmu.Lock()
	s.pending = p
	p.timer = time.AfterFunc(s.c.cfg.ReplyTimeout, func() {
		s.fail(fmt.Errorf("%w to %s within %v", ErrNoReply, midString(f.MID), s.c.cfg.ReplyTimeout))
	})
	s.pmu.Unlock()
	if err := s.write(f); err != nil {
		return Frame{}, err
	}
	select {
	case rf := <-p.ch:
		return s.interpret(p, rf)
	case <-s.done:
		// A controller that answers and closes (error 96 does): the
		// reader delivered the answer before it saw the end.
		select {
		case rf := <-p.ch:
			return s.interpret(p, rf)
		default:
		}
		return Frame{}, s.linkErr()
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	}
}

func (s *session) interpret(p *pending, rf Frame) (Frame, error) {
	switch rf.MID {
	case midCommandError:
		_, code, err := errorReply(rf)
		if err != nil {
			return rf, err
		}
		return rf, &CommandError{Controller: s.c.cfg.ID, Address: s.c.cfg.Address, MID: p.mid, Revision: p.rev, Code: code}
	case midCommandAccepted:
		if p.reply != 0 {
			return rf, &ParseError{MID: p.mid, Revision: p.rev, Reason: fmt.Sprintf("answered by MID 0005, not %s", midString(p.reply))}
		}
	}
	return rf, nil
}

// deliverReply hands f to the waiting request, if it answers it.
func (s *session) deliverReply(f Frame) bool {
	s.pmu.Lock()
	p := s.pending
	if p == nil || !p.matches(f) {
		s.pmu.Unlock()
		return false
	}
	s.pending = nil
	p.timer.Stop()
	s.pmu.Unlock()
	p.ch <- f
	<-s.sem
	return true
}

// readLoop reads and dispatches frames until the connection fails.
func (s *session) readLoop() {
	fr := NewFrameReader(s.conn, s.c.cfg.MaxFrameLength)
	for {
		f, err := fr.Next()
		if err != nil {
			switch {
			case errors.Is(err, ErrFrame):
				s.fail(err)
			case errors.Is(err, io.EOF):
				s.fail(fmt.Errorf("%w: the controller closed the connection", ErrLinkLost))
			default:
				s.fail(fmt.Errorf("%w: read: %w", ErrLinkLost, err))
			}
			return
		}
		s.dispatch(f)
	}
}

func (s *session) dispatch(f Frame) {
	switch f.MID {
	case midResult:
		s.result(f)
	case midCommandError, midCommandAccepted, midCommStartAck, midOldResult, midKeepAlive:
		if !s.deliverReply(f) {
			s.log.Warn("openprotocol: reply to no request, ignored", "mid", f.MID, "data", string(f.Data))
		}
	default:
		s.c.unknownMID(f)
	}
}

// result delivers a MID 0061 to the caller, unless it is one the caller
// already has from this connection (the controller sends a result again
// when its acknowledge is late).
func (s *session) result(f Frame) {
	r, err := ParseResult(f, s.c.cfg.Location)
	if err != nil {
		// Never acknowledged: it holds back every later acknowledge of
		// this connection, for a MID 0062 after it would acknowledge it.
		s.amu.Lock()
		s.inflight = append(s.inflight, inflight{bad: true})
		s.amu.Unlock()
		s.c.badResult(err, f)
		return
	}
	r.Controller, r.gen = s.c.cfg.ID, s.gen
	s.amu.Lock()
	if s.knownLocked(r.TighteningID) {
		s.amu.Unlock()
		s.c.duplicate(r.TighteningID)
		return
	}
	s.inflight = append(s.inflight, inflight{id: r.TighteningID})
	s.amu.Unlock()
	s.c.mResults.Inc()
	select {
	case s.c.results <- r:
	case <-s.done:
	}
}

func (s *session) knownLocked(id uint32) bool {
	for _, in := range s.inflight {
		if in.id == id && !in.bad {
			return true
		}
	}
	return slices.Contains(s.recent, id)
}

// ack acknowledges the result of tightening id. MID 0062 carries no id: it
// acknowledges the oldest unacknowledged result, so acknowledges go out in
// delivery order: an Ack of a later result waits for the earlier ones.
func (s *session) ack(id uint32) error {
	s.amu.Lock()
	for i := range s.inflight {
		if s.inflight[i].id == id && !s.inflight[i].bad {
			s.inflight[i].acked = true
			break
		}
	}
	n := 0
	for n < len(s.inflight) && s.inflight[n].acked {
		s.rememberLocked(s.inflight[n].id)
		n++
	}
	s.inflight = slices.Delete(s.inflight, 0, n)
	s.amu.Unlock()
	select {
	case <-s.done:
		return s.linkErr()
	default:
	}
	if n > 0 {
		s.acks.Add(int64(n))
		select {
		case s.ackKick <- struct{}{}:
		default:
		}
	}
	return nil
}

// ackFrame is MID 0062, last tightening result data acknowledge.
var ackFrame = Frame{MID: midResultAck}.Append(nil)

// ackLoop writes the acknowledges queued by ack, all those waiting in one
// write: a caller acknowledging results as fast as they come costs one
// write per batch, not per result.
func (s *session) ackLoop() {
	var buf []byte
	for {
		select {
		case <-s.done:
			return
		case <-s.ackKick:
		}
		n := int(s.acks.Swap(0))
		if n == 0 {
			continue
		}
		buf = buf[:0]
		for range n {
			buf = append(buf, ackFrame...)
		}
		if err := s.writeRaw(buf, midResultAck); err != nil {
			return
		}
		s.c.mAcks.Add(float64(n))
	}
}

func (s *session) rememberLocked(id uint32) {
	if len(s.recent) < recentAcked {
		s.recent = append(s.recent, id)
		return
	}
	s.recent[s.next] = id
	s.next = (s.next + 1) % recentAcked
}

// keepAlive sends a MID 9999 whenever nothing was sent for the keep-alive
// interval; a controller that does not answer ends the session.
func (s *session) keepAlive() {
	ka := s.c.cfg.KeepAlive
	t := time.NewTimer(ka)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		idle := time.Since(time.Unix(0, s.lastSent.Load()))
		if idle < ka {
			t.Reset(ka - idle)
			continue
		}
		if _, err := s.request(s.ctx, Frame{MID: midKeepAlive}, midKeepAlive); err != nil {
			return
		}
		t.Reset(ka)
	}
}
