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

// defaultProducts is the planning half of the default line (../LINE.md):
// its models, colours and options, the sequencing rules and the JIS
// suppliers. The VIN parts match what the simulated plant stamps
// (TestDefaultProductsMatchPlant). With manifest, the tracker downloads the
// build sequence to W01; without, the plant invents its own mix.
func defaultProducts(cfg *line.Config, manifest bool) {
	cfg.Products = &line.Products{
		WMI: simulator.WMIDefault, ModelYear: simulator.ModelYear, PlantCode: string(rune(simulator.PlantCode)),
		Models: []line.Model{
			{Code: "KV", Name: "Kei Van", Body: "2", Variants: []line.Variant{
				{Name: "2WD", Code: "2W"}, {Name: "4WD", Code: "4W", Options: []string{"4WD"}}}},
			{Code: "KW", Name: "Kei Wagon", Body: "1", Variants: []line.Variant{
				{Name: "NA", Code: "NA"}, {Name: "Turbo", Code: "TB", Options: []string{"TURBO"}}}},
			{Code: "KT", Name: "Kei Truck", Body: "3", Variants: []line.Variant{
				{Name: "4WD", Code: "4W", Options: []string{"4WD"}}}},
			{Code: "KE", Name: "Kei EV", Body: "4", Options: []string{"EV"}, Variants: []line.Variant{
				{Name: "standard", Code: "SR"}, {Name: "long range", Code: "LR"}}},
		},
		Colours: []string{"white", "silver", "black", "red", "blue", "mint"},
		Options: []string{"SUNROOF"},
	}
	cfg.Sequencing = &line.Sequencing{
		Options: []line.Ratio{{Name: "EV", P: 1, Q: 3}, {Name: "4WD", P: 2, Q: 5}, {Name: "TURBO", P: 1, Q: 2}},
		// Heijunka: no model more than 3 in any 5 consecutive cars.
		Models:         []line.Ratio{{Name: "KV", P: 3, Q: 5}, {Name: "KW", P: 3, Q: 5}, {Name: "KT", P: 2, Q: 5}, {Name: "KE", P: 2, Q: 5}},
		ColourBatchMax: 10,
		Horizon:        960, // a day: two shifts at a 60 s takt
	}
	if manifest {
		cfg.Sequencing.Station = "W01"
	}
	cfg.Broadcast = &line.Broadcast{
		Station: "T01",
		Suppliers: []line.Supplier{
			{Name: "cockpit", Part: "CPM", Install: "T03", Variant: "{model}-{variant}"},
			{Name: "battery", Part: "BAT", Install: "C01", Variant: "{model}-{variant}", Models: []string{"KE"}},
			{Name: "seats", Part: "SEAT", Install: "F01", Variant: "{model}-{colour}"},
		},
	}
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
