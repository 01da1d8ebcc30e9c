package stations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/stations/openprotocol"
)

// The interlock (docs/torque.md): a controller's tool runs only for the
// car its station's PLC shows (VinPresent), with the parameter set the
// line config's pset map gives that car's build, until the car's batch is
// complete. The build comes from the VIN itself (line.Products.BuildOf):
// the agent reads no database, and the VIN's descriptor is the model and
// variant the car was framed as.

// Interlock timing.
const (
	// interlockTick is how often the interlock looks at the link (a
	// reconnect makes it say again what the tool may do).
	interlockTick = 200 * time.Millisecond
	// interlockRetry is the wait after a command the controller refused.
	interlockRetry = 2 * time.Second
	// interlockCommandTimeout bounds one command, so a dead link does not
	// hold the interlock.
	interlockCommandTimeout = 5 * time.Second
)

// toolState is what the interlock wants of the tool.
type toolState struct {
	enabled bool
	vin     string
	pset    int
	why     string // why disabled, for the log
	wrong   string // the wrong car's reason (alarm), "" when none
}

// applied is what the interlock last did on the controller.
type applied struct {
	valid    bool
	connects int // the client's handshake count when it did
	tool     toolState
}

// carChanged is the poller's news of a new car (or none) in the station.
func (c *controllerAgent) carChanged(vin string, known bool) {
	c.mu.Lock()
	c.car = carView{vin: vin, known: known, seen: true}
	if c.batchDone != vin {
		c.batchDone = ""
	}
	c.mu.Unlock()
	c.poke()
}

func (c *controllerAgent) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// batchProgress tells the interlock a result of the car in the station:
// once its batch is complete the tool is disabled.
func (c *controllerAgent) batchProgress(td *event.Tightening) {
	c.mu.Lock()
	done := c.car.seen && td.VIN != "" && td.VIN == c.car.vin && td.BatchStatus == event.StatusOK
	if done {
		c.batchDone = td.VIN
	}
	c.mu.Unlock()
	if done {
		c.poke()
	}
}

// desired is what the tool may do now.
func (c *controllerAgent) desired() toolState {
	c.mu.Lock()
	car, done := c.car, c.batchDone
	c.mu.Unlock()
	switch {
	case !car.seen:
		return toolState{why: "the station's PLC not read yet"}
	case !car.known:
		return toolState{why: "VinPresent unreadable: the car is not known"}
	case car.vin == "":
		return toolState{why: "no car in the station"}
	}
	var b line.Build
	if p := c.lc.Products; p != nil {
		var err error
		if b, err = p.BuildOf(car.vin); err != nil {
			why := fmt.Sprintf("the wrong car: %v", err)
			return toolState{vin: car.vin, why: why, wrong: why}
		}
	}
	pset, ok := c.ct.PsetFor(b)
	switch {
	case !ok:
		return toolState{vin: car.vin, why: fmt.Sprintf("build %s gets no tightening from this controller (pset map)", b)}
	case done == car.vin:
		return toolState{vin: car.vin, pset: pset, why: "the car's batch is complete"}
	}
	return toolState{enabled: true, vin: car.vin, pset: pset}
}

// interlock keeps the tool as desired says until ctx is done: after every
// change of the car, a complete batch, and every reconnect. It also
// raises and clears the controller_down alarm.
func (c *controllerAgent) interlock(ctx context.Context) {
	tick := time.NewTicker(interlockTick)
	defer tick.Stop()
	var done applied
	var downSince, retryAt time.Time
	lastVIN := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-tick.C:
		}
		st := c.client.Status()
		c.watchLink(ctx, st, &downSince)
		if c.noInterlock || !st.Connected || time.Now().Before(retryAt) {
			continue
		}
		want := c.desired()
		c.wrongCar(ctx, want)
		if want.vin != lastVIN {
			// A new car: the one-shot alarms of the last one are done with.
			c.clear(ctx, event.AlarmWhileDisabled)
			c.clear(ctx, event.AlarmTighteningLost)
			lastVIN = want.vin
		}
		if done.valid && done.connects == st.Connects && done.tool == want {
			continue
		}
		if err := c.apply(ctx, want, done); err != nil {
			if ctx.Err() != nil {
				return
			}
			var ce *openprotocol.CommandError
			switch {
			case errors.Is(err, errBatchDone):
			case errors.As(err, &ce):
				retryAt = time.Now().Add(interlockRetry)
				c.raise(ctx, &event.Alarm{Active: true, Code: event.AlarmToolCommand, Controller: c.ct.ID,
					Text: fmt.Sprintf("controller %s refused the interlock: %v", c.ct.ID, err)})
			default:
				c.log.Warn("interlock command failed; retrying", "err", err)
			}
			done.valid = false
			continue
		}
		c.clear(ctx, event.AlarmToolCommand)
		done = applied{valid: true, connects: st.Connects, tool: want}
	}
}

// apply makes the tool what want says, knowing what the interlock did
// before (prev).
func (c *controllerAgent) apply(ctx context.Context, want toolState, prev applied) error {
	ctx, cancel := context.WithTimeout(ctx, interlockCommandTimeout)
	defer cancel()
	if !want.enabled {
		if err := c.client.DisableTool(ctx); err != nil {
			return err
		}
		newest, err := c.newest(ctx)
		if err != nil {
			return err
		}
		c.disabledFrom(newest.TighteningID)
		c.mEnabled.Set(0)
		if !prev.valid || prev.tool.enabled || prev.tool.why != want.why {
			c.log.Info("tool disabled", "why", want.why, "vin", want.vin)
		}
		return nil
	}
	newest, err := c.newest(ctx)
	if err != nil {
		return err
	}
	if !prev.valid || prev.tool.vin != want.vin || prev.tool.pset != want.pset {
		// A car new to the interlock. The controller's newest result says
		// whether its batch is under way already (the agent restarted, or
		// the link came back): then the parameter set is not selected again,
		// which would start the batch over.
		under := newest.TighteningID > 0 && newest.VIN == want.vin && newest.Pset == want.pset
		if under && newest.BatchStatus == openprotocol.BatchOK {
			c.mu.Lock()
			if c.car.vin == want.vin {
				c.batchDone = want.vin
			}
			c.mu.Unlock()
			c.poke()
			return errBatchDone
		}
		if !under {
			// Disabled while the VIN and the parameter set change: the
			// previous car's VIN with the new set (or the reverse) must
			// not tighten, and the selection starts the batch over.
			if err := c.client.DisableTool(ctx); err != nil {
				return err
			}
			c.disabledFrom(newest.TighteningID)
		}
		if err := c.client.DownloadVIN(ctx, want.vin); err != nil {
			return err
		}
		if !under {
			if err := c.client.SelectPset(ctx, want.pset); err != nil {
				return err
			}
		}
	}
	// The window closes before the enable goes out: the first result may
	// come back before EnableTool returns.
	c.enabledAfter(newest.TighteningID)
	if err := c.client.EnableTool(ctx); err != nil {
		c.disabledFrom(newest.TighteningID)
		return err
	}
	c.mEnabled.Set(1)
	if !prev.valid || !prev.tool.enabled || prev.tool.vin != want.vin {
		c.log.Info("tool enabled", "vin", want.vin, "pset", want.pset)
	}
	return nil
}

// errBatchDone: the car's batch was complete already; the interlock looks
// again at once and disables the tool.
var errBatchDone = errors.New("the car's batch is complete")

// newest is the controller's newest result (MID 0064 id 0), the zero
// result when it keeps none.
func (c *controllerAgent) newest(ctx context.Context) (openprotocol.Result, error) {
	r, err := c.client.OldResult(ctx, 0)
	if errors.Is(err, openprotocol.ErrTighteningNotFound) {
		return openprotocol.Result{}, nil
	}
	return r, err
}

// disabledFrom opens a disabled window after tightening id newest: any
// later tightening is made while disabled, until enabledAfter.
func (c *controllerAgent) disabledFrom(newest uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.windows); n > 0 && c.windows[n-1].to == 0 {
		return // open already
	}
	c.windows = append(c.windows, window{from: newest})
}

// enabledAfter closes the open disabled window at tightening id newest,
// the controller's newest before the tool was enabled.
func (c *controllerAgent) enabledAfter(newest uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.windows)
	if n == 0 || c.windows[n-1].to != 0 {
		return
	}
	if newest <= c.windows[n-1].from {
		c.windows = c.windows[:n-1] // nothing made while disabled
		return
	}
	c.windows[n-1].to = newest
}

// madeWhileDisabled reports whether tightening id lies in a disabled
// window.
func (c *controllerAgent) madeWhileDisabled(id uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.windows {
		if id > w.from && (w.to == 0 || id <= w.to) {
			return true
		}
	}
	return false
}

// pruneWindowsLocked forgets closed windows below the last durable id.
func (c *controllerAgent) pruneWindowsLocked() {
	k := 0
	for _, w := range c.windows {
		if w.to != 0 && w.to <= c.last {
			continue
		}
		c.windows[k] = w
		k++
	}
	c.windows = c.windows[:k]
}

// watchLink raises the controller_down alarm when the link has been down
// for ControllerDownAlarmAfter (at once when another client holds the
// controller) and clears it when the link is back.
func (c *controllerAgent) watchLink(ctx context.Context, st openprotocol.Status, downSince *time.Time) {
	if st.Connected {
		c.mConnected.Set(1)
		*downSince = time.Time{}
		c.clear(ctx, event.AlarmControllerDown)
		return
	}
	c.mConnected.Set(0)
	if downSince.IsZero() {
		*downSince = time.Now()
	}
	busy := errors.Is(st.LastError, openprotocol.ErrClientAlreadyConnected)
	if !busy && (time.Since(*downSince) < ControllerDownAlarmAfter || st.LastError == nil) {
		return
	}
	text := fmt.Sprintf("no link to controller %s (%s): its results wait in it", c.ct.ID, c.ct.Address)
	if busy {
		text = fmt.Sprintf("controller %s (%s) refuses the agent: another client holds it (MID 0004 error 96); its results wait in it", c.ct.ID, c.ct.Address)
	}
	c.raise(ctx, &event.Alarm{Active: true, Code: event.AlarmControllerDown, Controller: c.ct.ID, Text: text})
}

// wrongCar raises the wrong_car alarm while a car the line cannot place
// (its VIN names no build of the products) is in the station, and clears
// it when it has gone.
func (c *controllerAgent) wrongCar(ctx context.Context, want toolState) {
	if want.wrong != "" {
		c.raise(ctx, &event.Alarm{Active: true, Code: event.AlarmWrongCar, Controller: c.ct.ID,
			Text: fmt.Sprintf("controller %s: tool disabled for VIN %s: %s", c.ct.ID, want.vin, want.wrong)})
		return
	}
	c.clear(ctx, event.AlarmWrongCar)
}
