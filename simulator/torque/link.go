package torque

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// link is the connection of the one client. Its reader answers requests,
// its pusher sends results, its writer writes frames through the faults.
type link struct {
	c    *Controller
	conn net.Conn
	log  *slog.Logger
	out  chan outFrame
	wake chan struct{}
	done chan struct{}
	once sync.Once

	// Guarded by c.mu.
	started    bool // MID 0001 answered
	subscribed bool
	resultRev  int
	noAck      bool      // the subscription wants no MID 0062
	sent       int       // queued results sent and awaiting MID 0062
	sentAt     time.Time // when the oldest of them was (re)sent
	tries      int       // resends of the oldest
}

// outFrame is bytes to write; closeAfter ends the link once written.
type outFrame struct {
	b          []byte
	raw        bool // ignores Silent
	closeAfter bool
}

func newLink(c *Controller, conn net.Conn) *link {
	return &link{
		c: c, conn: conn, log: c.log.With("remote", conn.RemoteAddr().String()),
		out: make(chan outFrame, 256), wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// start runs the link's goroutines (the controller's wait group owns them).
func (l *link) start() {
	l.c.wg.Go(l.read)
	l.c.wg.Go(l.write)
	l.c.wg.Go(l.push)
}

// close ends the link; the first reason is logged.
func (l *link) close(why error) {
	l.once.Do(func() {
		l.log.Info("torque controller: client link closed", "reason", why.Error())
		close(l.done)
		l.conn.Close()
		l.c.linkEnded(l)
	})
}

func (l *link) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// send queues b for the writer. Silent drops it unless raw.
func (l *link) send(b []byte, raw bool) {
	if !raw && l.c.currentFaults().Silent {
		return
	}
	select {
	case l.out <- outFrame{b: b, raw: raw}:
	case <-l.done:
	}
}

// read handles the client's messages until the link ends. A client silent
// for the keep-alive timeout is dropped, and so is one sending a malformed
// frame.
func (l *link) read() {
	br := bufio.NewReader(l.conn)
	for {
		l.conn.SetReadDeadline(time.Now().Add(l.c.cfg.KeepAliveTimeout))
		m, err := readMessage(br)
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				l.close(fmt.Errorf("client silent for %v", l.c.cfg.KeepAliveTimeout))
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
				l.close(errors.New("client closed the connection"))
			default:
				l.close(fmt.Errorf("read: %w", err))
			}
			return
		}
		if !l.handle(m) {
			return
		}
	}
}

// handle answers one message; it returns false when the link ends.
func (l *link) handle(m message) bool {
	c := l.c
	c.mu.Lock()
	c.received[m.mid]++
	if !l.started && m.mid != midCommStart {
		c.mu.Unlock()
		l.close(fmt.Errorf("MID %04d before communication start", m.mid))
		return false
	}
	reply, closeAfter := l.answerLocked(m)
	c.mu.Unlock()
	if reply != nil {
		if closeAfter {
			select {
			case l.out <- outFrame{b: reply, closeAfter: true}:
			case <-l.done:
			}
			return false
		}
		l.send(reply, false)
	}
	l.kick()
	return true
}

// answerLocked carries out m and returns the reply (nil for none).
func (l *link) answerLocked(m message) (reply []byte, closeAfter bool) {
	c := l.c
	switch m.mid {
	case midCommStart:
		switch {
		case l.started:
			return errorFrame(m.mid, codeClientConnected), false
		case m.rev > c.cfg.MaxRevision:
			return errorFrame(m.mid, codeRevisionUnsupported), false
		}
		l.started = true
		return c.commStartAck(m.rev), false
	case midCommStop:
		return acceptedFrame(m.mid), true
	case midKeepAlive:
		return frame(midKeepAlive, 1, ""), false
	case midSelectPset:
		id, err := strconv.Atoi(strings.TrimSpace(m.data))
		if err != nil {
			return errorFrame(m.mid, codeInvalidData), false
		}
		if !c.hasPsetLocked(id) {
			return errorFrame(m.mid, codePsetNotPresent), false
		}
		c.st.Pset, c.st.PsetChanged, c.st.BatchCounter = id, c.cfg.Now().Truncate(time.Second), 0
	case midDisable:
		c.st.Enabled = false
	case midEnable:
		c.st.Enabled = true
	case midVIN:
		if len(m.data) > vinLen {
			return errorFrame(m.mid, codeInvalidData), false
		}
		c.st.VIN = strings.TrimSpace(m.data)
	case midSubscribe:
		switch {
		case m.rev > c.cfg.MaxResultRevision:
			return errorFrame(m.mid, codeRevisionUnsupported), false
		case l.subscribed:
			return errorFrame(m.mid, codeSubscriptionExists), false
		}
		l.subscribed, l.resultRev, l.noAck, l.sent = true, m.rev, m.noAck, 0
	case midResultAck:
		if c.faults.DropAcks {
			return nil, false
		}
		l.ackLocked()
		return nil, false
	case midUnsubscribe:
		if !l.subscribed {
			return errorFrame(m.mid, codeSubscriptionMissing), false
		}
		l.subscribed, l.sent = false, 0
	case midOldRequest:
		return l.oldResultLocked(m), false
	default:
		return errorFrame(m.mid, codeUnknownMID), false
	}
	c.saveLocked()
	return acceptedFrame(m.mid), false
}

func (c *Controller) hasPsetLocked(id int) bool {
	for _, t := range c.cfg.Tools {
		if _, ok := t.Psets[id]; ok {
			return true
		}
	}
	return false
}

// ackLocked takes a MID 0062 as the acknowledge of the oldest result sent.
func (l *link) ackLocked() {
	c := l.c
	if l.sent == 0 {
		l.log.Warn("torque controller: MID 0062 with no result awaiting it, ignored")
		return
	}
	c.st.Queue = c.st.Queue[1:]
	l.sent--
	l.sentAt, l.tries = c.cfg.Now(), 0
	c.saveLocked()
}

func (l *link) oldResultLocked(m message) []byte {
	c := l.c
	if m.rev > min(c.cfg.MaxResultRevision, OldResultRevisionMax) {
		return errorFrame(m.mid, codeRevisionUnsupported)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(m.data), 10, 32)
	if err != nil || len(m.data) != 10 {
		return errorFrame(m.mid, codeInvalidData)
	}
	if len(c.st.results) == 0 {
		return errorFrame(m.mid, codeTighteningNotFound)
	}
	i := len(c.st.results) - 1
	if id != 0 {
		var ok bool
		i, ok = c.byID[uint32(id)]
		if !ok || c.cfg.Keep > 0 && c.st.results[len(c.st.results)-1].ID-uint32(id) >= uint32(c.cfg.Keep) {
			return errorFrame(m.mid, codeTighteningNotFound)
		}
	}
	return oldResultFrame(&c.st.results[i], m.rev, c.cfg.Location)
}

// push sends the queued results to the subscriber, at most PushWindow
// unacknowledged at once, and the oldest again each AckTimeout until it
// is acknowledged; after AckRetries resends it closes the link.
func (l *link) push() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		frames, wait, broken := l.due()
		if broken != nil {
			l.close(broken)
			return
		}
		for _, f := range frames {
			l.send(f, false)
		}
		timer.Reset(wait)
		select {
		case <-l.wake:
		case <-timer.C:
		case <-l.done:
			return
		}
	}
}

// due returns the frames to push now and how long to wait before looking
// again.
func (l *link) due() (frames [][]byte, wait time.Duration, broken error) {
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	wait = time.Hour
	if !l.subscribed {
		return nil, wait, nil
	}
	now := c.cfg.Now()
	for l.sent < len(c.st.Queue) && l.sent < c.cfg.PushWindow {
		t := &c.st.results[c.byID[c.st.Queue[l.sent]]]
		frames = append(frames, resultFrame(t, l.resultRev, c.cfg.Location))
		if l.noAck {
			c.st.Queue = c.st.Queue[1:]
			c.saveLocked()
			continue
		}
		if l.sent == 0 {
			l.sentAt, l.tries = now, 0
		}
		l.sent++
	}
	if l.sent == 0 {
		return frames, wait, nil
	}
	due := l.sentAt.Add(c.cfg.AckTimeout)
	if !now.Before(due) {
		if c.cfg.AckRetries >= 0 && l.tries >= c.cfg.AckRetries {
			return nil, 0, fmt.Errorf("tightening %d not acknowledged after %d resends", c.st.Queue[0], l.tries)
		}
		t := &c.st.results[c.byID[c.st.Queue[0]]]
		frames = append(frames, resultFrame(t, l.resultRev, c.cfg.Location))
		l.tries++
		c.resends++
		l.sentAt = now
		due = now.Add(c.cfg.AckTimeout)
	}
	return frames, max(due.Sub(now), time.Millisecond), nil
}

// write writes the queued frames through the faults until the link ends.
func (l *link) write() {
	for {
		var f outFrame
		select {
		case f = <-l.out:
		case <-l.done:
			return
		}
		faults := l.c.currentFaults()
		if faults.ReplyDelay > 0 && !f.raw {
			t := time.NewTimer(faults.ReplyDelay)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
		}
		buf, closeAfter := l.merge(f, faults.MergeWrites)
		if err := l.writeSplit(buf, faults.SplitWrites); err != nil {
			l.close(fmt.Errorf("write: %w", err))
			return
		}
		if closeAfter {
			l.close(errors.New("client stopped the communication (MID 0003)"))
			return
		}
	}
}

// merge appends up to n-1 more queued frames to f's bytes.
func (l *link) merge(f outFrame, n int) ([]byte, bool) {
	buf := append([]byte(nil), f.b...)
	if n <= 1 || f.closeAfter {
		return buf, f.closeAfter
	}
	linger := time.NewTimer(MergeLinger)
	defer linger.Stop()
	for range n - 1 {
		select {
		case g := <-l.out:
			buf = append(buf, g.b...)
			if g.closeAfter {
				return buf, true
			}
		case <-linger.C:
			return buf, false
		case <-l.done:
			return buf, false
		}
	}
	return buf, false
}

func (l *link) writeSplit(buf []byte, piece int) error {
	l.conn.SetWriteDeadline(time.Now().Add(l.c.cfg.KeepAliveTimeout))
	if piece <= 0 {
		_, err := l.conn.Write(buf)
		return err
	}
	for len(buf) > 0 {
		n := min(piece, len(buf))
		if _, err := l.conn.Write(buf[:n]); err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}
