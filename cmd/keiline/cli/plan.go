package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/sequence"
	"github.com/keiline/keiline/schema"
)

// loadPlanningConfig reads the line config for the planning commands:
// --config, or line.yaml in the state dir.
func loadPlanningConfig(config, state string) (*line.Config, error) {
	if config == "" {
		if state == "" {
			state = StateDirDefault
		}
		config = filepath.Join(state, "line.yaml")
	}
	lc, err := line.Load(config)
	if err != nil {
		return nil, err
	}
	if lc.Products == nil {
		return nil, fmt.Errorf("%s: no products section: orders cannot be checked or sequenced (see docs/line-config.md)", config)
	}
	return lc, nil
}

// planConfig is the sequencer's view of a line config.
func planConfig(lc *line.Config, horizon int, search sequence.Config) pipeline.PlanConfig {
	cfg := pipeline.PlanConfig{VIN: lc.Products.VIN, Horizon: horizon, Search: search}
	if s := lc.Sequencing; s != nil {
		cfg.Rules = pipeline.Rules(s.Options, s.Models, s.ColourBatchMax)
		if cfg.Horizon == 0 {
			cfg.Horizon = s.Horizon
		}
	}
	return cfg
}

// runOrdersPlan sequences the open orders: keiline orders plan.
func runOrdersPlan(ctx context.Context, args []string) error {
	return ordersPlan(ctx, args, os.Stdout)
}

func ordersPlan(ctx context.Context, args []string, w io.Writer) error {
	fs := newFlags("orders plan")
	config := fs.String("config", "", "line config (default: line.yaml in the state dir)")
	dbURL := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL (env KEILINE_DB)")
	state := fs.String("state", "", "use the private PostgreSQL of this `up` state dir")
	horizon := fs.Int("horizon", 0, "most orders to sequence (default: the line config's horizon)")
	limit := fs.Duration("time-limit", sequence.TimeLimitDefault, "sequencer search time")
	seed := fs.Uint64("seed", 1, "sequencer random seed")
	asJSON := fs.Bool("json", false, "JSON for machines")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("orders plan: unexpected argument %q", pos[0])
	}
	if *horizon < 0 || *limit <= 0 {
		return errors.New("orders plan: --horizon must be ≥ 0 and --time-limit positive")
	}
	lc, err := loadPlanningConfig(*config, *state)
	if err != nil {
		return err
	}
	if *state == "" && *dbURL == "" {
		*state = StateDirDefault
	}
	db, err := openDatabase(ctx, *dbURL, *state, toolLogger())
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	store, err := schema.OpenRole(ctx, db.URL, schema.RoleWriter)
	if err != nil {
		return err
	}
	defer store.Close()
	res, err := pipeline.PlanOrders(ctx, store, planConfig(lc, *horizon, sequence.Config{TimeLimit: *limit, Seed: *seed}))
	if err != nil {
		return err
	}
	return printPlan(w, res, *asJSON)
}

// printPlan prints a sequencing run: the summary, each rule, then the cars.
func printPlan(w io.Writer, res *pipeline.PlanResult, asJSON bool) error {
	p := res.Plan
	if asJSON {
		type car struct {
			Seq     int64    `json:"seq"`
			OrderID string   `json:"order_id"`
			VIN     string   `json:"vin"`
			Model   string   `json:"model"`
			Variant string   `json:"variant"`
			Colour  string   `json:"colour"`
			Options []string `json:"options"`
		}
		type rule struct {
			Rule       string `json:"rule"`
			Cars       int    `json:"cars"`
			Violations int    `json:"violations"`
			Excess     int    `json:"excess"`
		}
		out := struct {
			PlanID        int64   `json:"plan_id"`
			FirstSeq      int64   `json:"first_seq"`
			Violations    int     `json:"violations"`
			Excess        int     `json:"excess"`
			BatchExcess   int     `json:"batch_excess"`
			ColourChanges int     `json:"colour_changes"`
			Seconds       float64 `json:"seconds"`
			Rules         []rule  `json:"rules"`
			Cars          []car   `json:"cars"`
		}{PlanID: res.PlanID, FirstSeq: res.FirstSeq, Violations: p.Violations, Excess: p.Excess, BatchExcess: p.BatchExcess,
			ColourChanges: p.ColourChanges, Seconds: p.Elapsed.Seconds(), Rules: []rule{}, Cars: []car{}}
		for _, r := range p.Rules {
			out.Rules = append(out.Rules, rule{r.Rule, r.Cars, r.Violations, r.Excess})
		}
		for _, c := range res.Cars {
			opts := c.Options
			if opts == nil {
				opts = []string{}
			}
			out.Cars = append(out.Cars, car{c.Seq, c.OrderID, c.VIN, c.Model, c.Variant, c.Colour, opts})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	last := res.FirstSeq + int64(len(res.Cars)) - 1
	fmt.Fprintf(w, "plan %d: %d cars, seq %d-%d, in %.1f s\n", res.PlanID, len(res.Cars), res.FirstSeq, last, p.Elapsed.Seconds())
	fmt.Fprintf(w, "ratio violations: %d windows (excess %d); colour changes: %d; colour batch excess: %d\n\n",
		p.Violations, p.Excess, p.ColourChanges, p.BatchExcess)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tCARS\tVIOLATIONS\tEXCESS")
	for _, r := range p.Rules {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", r.Rule, r.Cars, r.Violations, r.Excess)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SEQ\tVIN\tORDER\tMODEL\tVARIANT\tCOLOUR\tOPTIONS")
	for _, c := range res.Cars {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%v\n", c.Seq, c.VIN, c.OrderID, c.Model, c.Variant, c.Colour, c.Options)
	}
	return tw.Flush()
}

// runOrdersSequence prints the build sequence: keiline orders sequence.
func runOrdersSequence(ctx context.Context, args []string) error {
	fs := newFlags("orders sequence")
	dbURL := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL (env KEILINE_DB)")
	state := fs.String("state", "", "use the private PostgreSQL of this `up` state dir")
	after := fs.Int64("after", 0, "start after this sequence number")
	limit := fs.Int("limit", 1000, "most cars to print")
	asJSON := fs.Bool("json", false, "one JSON object per car and line")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("orders sequence: unexpected argument %q", pos[0])
	}
	if *state == "" && *dbURL == "" {
		*state = StateDirDefault
	}
	store, done, err := openAuditor(ctx, *dbURL, *state)
	if err != nil {
		return err
	}
	defer done()
	cars, err := store.Sequence(ctx, *after, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, c := range cars {
			opts := c.Options
			if opts == nil {
				opts = []string{}
			}
			if err := enc.Encode(map[string]any{"seq": c.Seq, "order_id": c.OrderID, "vin": c.VIN, "model": c.Model, "variant": c.Variant,
				"colour": c.Colour, "options": opts, "plan_id": c.PlanID, "downloaded_at": c.DownloadedAt}); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tVIN\tORDER\tMODEL\tVARIANT\tCOLOUR\tOPTIONS\tPLAN\tDOWNLOADED")
	for _, c := range cars {
		dl := "-"
		if c.DownloadedAt != nil {
			dl = c.DownloadedAt.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%v\t%d\t%s\n", c.Seq, c.VIN, c.OrderID, c.Model, c.Variant, c.Colour, c.Options, c.PlanID, dl)
	}
	return tw.Flush()
}

// runOrdersBroadcasts prints the recorded JIS broadcasts: keiline orders
// broadcasts (the record's view; `keiline broadcast tail` follows the
// broker's).
func runOrdersBroadcasts(ctx context.Context, args []string) error {
	fs := newFlags("orders broadcasts")
	dbURL := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL (env KEILINE_DB)")
	state := fs.String("state", "", "use the private PostgreSQL of this `up` state dir")
	supplier := fs.String("supplier", "", "only this supplier")
	limit := fs.Int("limit", 100000, "most broadcasts to print")
	asJSON := fs.Bool("json", false, "one JSON object per broadcast and line")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("orders broadcasts: unexpected argument %q", pos[0])
	}
	if *state == "" && *dbURL == "" {
		*state = StateDirDefault
	}
	store, done, err := openAuditor(ctx, *dbURL, *state)
	if err != nil {
		return err
	}
	defer done()
	bs, err := store.Broadcasts(ctx, *supplier, 0, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, b := range bs {
			if err := enc.Encode(b); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUPPLIER\tSEQ\tVIN\tPART\tVARIANT\tINSTALL\tPASSED\tPUBLISHED")
	for _, b := range bs {
		pub := "-"
		if b.PublishedAt != nil {
			pub = b.PublishedAt.UTC().Format("15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Supplier, b.Seq, b.VIN, b.PartNumber, b.PartVariant, b.Install,
			b.PassedAt.UTC().Format("2006-01-02 15:04:05"), pub)
	}
	return tw.Flush()
}
