package openprotocol

import (
	"context"
	"errors"
	"fmt"
)

// The exchanges of a session with the controller: communication start and
// stop, the result subscription, old results by tightening id.

// start runs the communication start (MID 0001), falling back to lower
// revisions on error 97.
func (s *session) start(ctx context.Context) error {
	cfg := &s.c.cfg
	for rev := cfg.Revision; ; rev-- {
		rf, err := s.request(ctx, Frame{MID: midCommStart, Revision: rev}, midCommStartAck)
		if err == nil {
			s.info, err = parseInfo(rf)
			return err
		}
		if !errors.Is(err, ErrRevisionUnsupported) || rev <= cfg.MinRevision {
			return err
		}
		s.log.Info("openprotocol: MID 0001 revision unsupported, asking the next lower", "revision", rev)
	}
}

// subscribe subscribes to the last tightening result (MID 0060), falling
// back to lower revisions on error 97. The header's no-ack flag is 0: the
// controller waits for a MID 0062 for each result.
func (s *session) subscribe(ctx context.Context) error {
	cfg := &s.c.cfg
	for rev := cfg.ResultRevision; ; rev-- {
		_, err := s.request(ctx, Frame{MID: midResultSubscribe, Revision: rev}, 0)
		var ce *CommandError
		if err == nil || errors.As(err, &ce) && ce.Code == CodeResultSubscriptionExists {
			s.resultRev.Store(int32(rev))
			return nil
		}
		if !errors.Is(err, ErrRevisionUnsupported) || rev <= cfg.MinResultRevision {
			return err
		}
		s.log.Info("openprotocol: MID 0060 revision unsupported, asking the next lower", "revision", rev)
	}
}

// oldResult fetches the result of tightening id (0: the newest) with MID
// 0064, at the highest revision the controller accepts.
func (s *session) oldResult(ctx context.Context, id uint32) (Result, error) {
	rev := int(s.oldRev.Load())
	if rev == 0 {
		rev = min(s.c.cfg.ResultRevision, OldResultRevisionMax)
	}
	for ; ; rev-- {
		data := appendDigits(nil, int(id), 10)
		rf, err := s.request(ctx, Frame{MID: midOldResultRequest, Revision: rev, Data: data}, midOldResult)
		if err == nil {
			s.oldRev.Store(int32(rev))
			r, err := ParseOldResult(rf, s.c.cfg.Location)
			if err != nil {
				return r, err
			}
			if id != 0 && r.TighteningID != id {
				return r, &ParseError{MID: midOldResult, Revision: rf.Revision, Param: 1, Name: "tightening ID",
					Reason: fmt.Sprintf("%d answers a request for %d", r.TighteningID, id)}
			}
			r.Controller = s.c.cfg.ID
			r.CellID, r.ChannelID, r.ControllerName = s.info.CellID, s.info.ChannelID, s.info.ControllerName
			return r, nil
		}
		if !errors.Is(err, ErrRevisionUnsupported) || rev <= 1 {
			return Result{}, err
		}
	}
}

// resultsSince fetches the results of the tightenings after id after, up
// to the newest, oldest first, at most Config.CatchUpMax. Ids the controller no
// longer keeps, and those beyond the limit, are skipped and returned in a
// *NotFoundError with the results.
func (s *session) resultsSince(ctx context.Context, after uint32) ([]Result, error) {
	newest, err := s.oldResult(ctx, 0)
	if errors.Is(err, ErrTighteningNotFound) {
		return nil, nil // the controller keeps no results
	}
	if err != nil {
		return nil, err
	}
	if newest.TighteningID <= after {
		return nil, nil
	}
	var out []Result
	var missing []uint32
	from, skipped := after+1, uint32(0)
	if limit := uint32(s.c.cfg.CatchUpMax); newest.TighteningID-after > limit {
		from = newest.TighteningID - limit + 1
		skipped = from - 1
	}
	for id := from; id < newest.TighteningID; id++ {
		r, err := s.oldResult(ctx, id)
		if errors.Is(err, ErrTighteningNotFound) {
			missing = append(missing, id)
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	out = append(out, newest)
	if len(missing) > 0 || skipped > 0 {
		e := &NotFoundError{Controller: s.c.cfg.ID, Address: s.c.cfg.Address, IDs: missing}
		if skipped > 0 {
			e.SkippedFrom, e.SkippedTo = after+1, skipped
		}
		return out, e
	}
	return out, nil
}

// catchUp fetches and delivers the results made after the caller's last
// durable one (Config.LastDurable).
func (s *session) catchUp() {
	after, err := s.c.cfg.LastDurable(s.ctx)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Error("openprotocol: last durable tightening unknown; results made while disconnected not fetched", "err", err)
		}
		return
	}
	if after == 0 {
		return
	}
	rs, err := s.resultsSince(s.ctx, after)
	if err != nil && s.ctx.Err() == nil {
		s.log.Error("openprotocol: fetch results made while disconnected", "after", after, "err", err)
	}
	if len(rs) > 0 {
		s.log.Info("openprotocol: fetched results made while disconnected", "after", after, "count", len(rs))
	}
	for _, r := range rs {
		select {
		case s.c.results <- r:
		case <-s.done:
			return
		}
	}
}

// stop says MID 0003 communication stop and ends the session.
func (s *session) stop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.c.cfg.ReplyTimeout)
	defer cancel()
	if _, err := s.request(ctx, Frame{MID: midCommStop}, 0); err != nil {
		s.log.Debug("openprotocol: communication stop not answered", "err", err)
	}
	s.fail(fmt.Errorf("%w: communication stopped", ErrClosed))
}
