package stations

import (
	"context"
	"time"

	"github.com/keiline/keiline/line"
)

// A station with tightening controllers publishes a car's cycle only once
// the car's tightening batches are durable: the PLC ends the cycle when the
// tools' batches are made, while the batches' last results may still be on
// their way from the controllers (or waiting for their MID 0062). Published
// first, the cycle would find the car's class A joints missing and the
// tracker would hold it until the late results release it. The wait is
// bounded (TighteningWaitMax): a controller that is down or slow does not
// stop the line; the cycle is published and the tracker holds the car until
// the results arrive.

// TighteningWaitMax is the longest a station's cycle waits for its car's
// tightening batches to be durable.
const TighteningWaitMax = 5 * time.Second

// batchesDurable waits until every controller of the station that
// tightens the car's build (its pset map) has a complete batch for vin
// durable, at most TighteningWaitMax, and reports the controllers it gave
// up on.
func (ts *torqueStation) batchesDurable(ctx context.Context, lc *line.Config, vin string) []string {
	if vin == "" {
		return nil
	}
	var b line.Build
	if lc.Products != nil {
		var err error
		if b, err = lc.Products.BuildOf(vin); err != nil {
			return nil // the wrong car: no batch is made for it
		}
	}
	deadline := time.NewTimer(TighteningWaitMax)
	defer deadline.Stop()
	for {
		var waiting []string
		var wake []<-chan struct{}
		for _, c := range ts.ctrls {
			if _, ok := c.ct.PsetFor(b); !ok {
				continue
			}
			if done, ch := c.batchDurable(vin); !done {
				waiting = append(waiting, c.ct.ID)
				wake = append(wake, ch)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-wake[0]:
		case <-deadline.C:
			return waiting
		case <-ctx.Done():
			return waiting
		}
	}
}

// batchDurable reports whether a complete batch for vin is durable, and
// otherwise a channel closed at the controller's next durable result.
func (c *controllerAgent) batchDurable(vin string) (bool, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastBatchVIN == vin {
		return true, nil
	}
	if c.durableNews == nil {
		c.durableNews = make(chan struct{})
	}
	return false, c.durableNews
}

// durableResult notes a durable tightening of vin (its batch complete or
// not) for the cycles waiting on it.
func (c *controllerAgent) durableResult(vin string, batchComplete bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if batchComplete && vin != "" {
		c.lastBatchVIN = vin
	}
	if c.durableNews != nil {
		close(c.durableNews)
		c.durableNews = nil
	}
}
