package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/sequence"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/simulator"
	"github.com/nats-io/nats.go"
)

// ManifestSlotsDefault is the framing station's manifest slots on the
// default line: the next K cars the MES has downloaded.
const ManifestSlotsDefault = 8

// defaultLine is the default line (line.Default) on plant p: each
// station's endpoint the plant's, the agents polling every poll. With
// manifest the tracker downloads the build sequence to the framing
// station; without, the plant invents its own mix and no station is named.
func defaultLine(p *simulator.Plant, poll time.Duration, manifest bool) (*line.Config, error) {
	lc := line.Default()
	eps := map[string]string{}
	for _, s := range p.Stations() {
		eps[s.ID] = s.Endpoint
	}
	if err := lc.SetEndpoints(eps); err != nil {
		return nil, err
	}
	// The plant's tightening controllers, or none: then its PLCs report
	// the joints.
	addrs := map[string]string{}
	for _, c := range p.Controllers() {
		addrs[c.ID] = c.Address
	}
	if len(addrs) == 0 {
		lc.RemoveControllers()
	} else if err := lc.SetControllerAddresses(addrs); err != nil {
		return nil, err
	}
	lc.PollInterval = poll
	if !manifest {
		lc.Sequencing.Station = ""
	}
	return lc, lc.Validate()
}

// broadcastOf is the tracker's view of a line config's JIS broadcast.
func broadcastOf(lc *line.Config) *pipeline.BroadcastConfig {
	b := lc.Broadcast
	if b == nil {
		return nil
	}
	out := &pipeline.BroadcastConfig{Station: b.Station}
	for _, s := range b.Suppliers {
		out.Suppliers = append(out.Suppliers, pipeline.JISSupplier{Name: s.Name, Part: s.Part, Install: s.Install, Variant: s.PartVariant})
	}
	return out
}

// newDispatcher downloads the build sequence to the line's framing
// station, sequencing more open orders when it runs low.
func newDispatcher(lc *line.Config, store *schema.Store, nc *nats.Conn, log *slog.Logger, out io.Writer) (*pipeline.Dispatcher, error) {
	s := lc.Sequencing
	if s == nil || s.Station == "" {
		return nil, errors.New("line config: sequencing.station (the framing station with manifest slots) is required to download the manifest")
	}
	st, _ := lc.Station(s.Station)
	cfg := planConfig(lc, 0, sequence.Config{TimeLimit: 10 * time.Second, Seed: 1})
	return pipeline.NewDispatcher(pipeline.DispatcherConfig{
		Plant: lc.Plant, Line: lc.Line, Station: st.ID, Slots: st.Manifest, Store: store, Conn: nc, Logger: log,
		Plan: func(ctx context.Context) error {
			res, err := pipeline.PlanOrders(ctx, store, cfg)
			if errors.Is(err, pipeline.ErrNoOrders) {
				return nil
			}
			if err != nil {
				return err
			}
			log.Info("orders sequenced", "plan", res.PlanID, "cars", len(res.Cars), "first_seq", res.FirstSeq,
				"violations", res.Plan.Violations, "colour_changes", res.Plan.ColourChanges)
			if out != nil {
				fmt.Fprintf(out, "keiline up: plan %d sequenced %d orders as seq %d-%d: %d ratio violations (excess %d), %d colour changes, colour batch excess %d\n",
					res.PlanID, len(res.Cars), res.FirstSeq, res.FirstSeq+int64(len(res.Cars))-1, res.Plan.Violations, res.Plan.Excess,
					res.Plan.ColourChanges, res.Plan.BatchExcess)
			}
			return nil
		},
	})
}

// torqueOf is the line's tightening controllers for the tracker; nil when
// the line has none.
func torqueOf(lc *line.Config) *pipeline.TorqueConfig {
	if len(lc.Controllers()) == 0 {
		return nil
	}
	return &pipeline.TorqueConfig{ClassA: func(station, key, model, variant string) []string {
		return lc.ClassAJoints(station, key, model, variant)
	}}
}
