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
	"time"

	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/spc"
	"github.com/keiline/keiline/traceweb"
)

const spcUsage = `keiline spc — statistical process control from the record (as the read-only auditor role)

  spc list [--last 7d] [--json]          every characteristic with values in the window, and its state
  spc chart KIND STATION NAME --out FILE.svg [--model M] [--variant V] [--last 30d | --from T1 --to T2] [--points N] [--lang en|ja]
                                         the control chart as SVG (frozen limits, else trial limits)
  spc capability KIND STATION NAME [--model M] [--variant V] [--last 30d | --from T1 --to T2]
                                         Cp, Cpk, Pp, Ppk with confidence intervals and the normality test

KIND is torque, angle or test. Spec limits, charts and rules come from the
line config's spc section (--config, default line.yaml in the state dir).
The database is the one of --state DIR or --db URL.
`

// spcFlags are the flags every spc command takes.
type spcFlags struct {
	state, db, config *string
	model, variant    *string
	from, to, last    *string
	asJSON            *bool
	out, lang         *string
	points            *int
	fromTime, toTime  time.Time
	settings          *line.SPC
	defaultWindow     time.Duration
}

func runSPC(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(os.Stderr, spcUsage)
		if len(args) == 0 {
			return errors.New("spc: give a command: list, chart, capability")
		}
		return nil
	}
	cmd := args[0]
	fs := newFlags("spc " + cmd)
	f := &spcFlags{
		state:   fs.String("state", StateDirDefault, "find the database of this `up` state dir"),
		db:      fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL (env KEILINE_DB)"),
		config:  fs.String("config", "", "line config with the spc section (default: line.yaml in the state dir, when there)"),
		model:   fs.String("model", "", "one model's values only"),
		variant: fs.String("variant", "", "one variant's values only (with --model)"),
		from:    fs.String("from", "", "window start (RFC 3339 or date)"),
		to:      fs.String("to", "", "window end, exclusive (default now)"),
		last:    fs.String("last", "", "window of this length up to --to (e.g. 7d)"),
		asJSON:  fs.Bool("json", false, "list: JSON for machines"),
		out:     fs.String("out", "", "chart: the SVG file to write"),
		lang:    fs.String("lang", "en", "chart: label language, en or ja"),
		points:  fs.Int("points", dashboard.SPCChartPointsDefault, "chart: how many of the newest points to draw"),
	}
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	f.defaultWindow = dashboard.SPCChartWindowDefault
	if cmd == "list" {
		f.defaultWindow = dashboard.SPCIndexWindowDefault
	}
	if err := f.window(time.Now()); err != nil {
		return fmt.Errorf("spc %s: %w", cmd, err)
	}
	if f.settings, err = spcSettings(*f.config, *f.state); err != nil {
		return err
	}
	var key schema.CharKey
	if cmd != "list" {
		if len(pos) != 3 {
			return fmt.Errorf("spc %s: give KIND STATION NAME (kind: torque, angle or test)", cmd)
		}
		key = schema.CharKey{Kind: pos[0], Station: pos[1], Name: pos[2], Model: *f.model, Variant: *f.variant}
		if err := key.Validate(); err != nil {
			return fmt.Errorf("spc %s: %w", cmd, err)
		}
	}
	store, done, err := openAuditor(ctx, *f.db, *f.state)
	if err != nil {
		return err
	}
	defer done()
	switch cmd {
	case "list":
		return spcList(ctx, os.Stdout, store, f)
	case "chart":
		return spcChart(ctx, os.Stdout, store, f, key)
	case "capability":
		return spcCapability(ctx, os.Stdout, store, f, key)
	}
	return fmt.Errorf("spc: unknown command %q (list, chart, capability)", cmd)
}

func (f *spcFlags) window(now time.Time) error {
	f.toTime = now
	if *f.to != "" {
		t, err := parseTime(*f.to)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		f.toTime = t
	}
	f.fromTime = f.toTime.Add(-f.defaultWindow)
	switch {
	case *f.from != "" && *f.last != "":
		return errors.New("give --from or --last, not both")
	case *f.from != "":
		t, err := parseTime(*f.from)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		f.fromTime = t
	case *f.last != "":
		d, err := traceweb.ParseSpan(*f.last)
		if err != nil {
			return fmt.Errorf("--last: %w", err)
		}
		f.fromTime = f.toTime.Add(-d)
	}
	if !f.fromTime.Before(f.toTime) {
		return errors.New("the window must end after it starts")
	}
	return nil
}

// spcSettings reads the spc section of the line config at path, or of the
// state dir's line.yaml when path is empty and that file exists.
func spcSettings(path, state string) (*line.SPC, error) {
	if path == "" {
		path = filepath.Join(state, "line.yaml")
		if _, err := os.Stat(path); err != nil {
			return nil, nil
		}
	}
	lc, err := line.Load(path)
	if err != nil {
		return nil, err
	}
	return &lc.SPC, nil
}

func spcList(ctx context.Context, out io.Writer, store *schema.Store, f *spcFlags) error {
	rows, err := dashboard.BuildIndex(ctx, store, f.fromTime, f.toTime)
	if err != nil {
		return err
	}
	if *f.asJSON {
		type row struct {
			schema.Characteristic
			State string `json:"state"`
		}
		list := []row{}
		for _, r := range rows {
			list = append(list, row{r.Characteristic, r.State()})
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSTATION\tNAME\tMODEL\tVALUES\tUNKNOWN\tSTATE")
	for _, r := range rows {
		state := r.State()
		if len(r.Broken) > 0 {
			state += ":"
			for _, b := range r.Broken {
				state += " " + dashboard.RuleName(b, "en")
			}
			state += " at " + r.BrokenVIN
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.Kind, r.Station, r.Name, r.Model+" "+r.Variant, r.Values, r.Unknown, state)
	}
	return tw.Flush()
}

func spcChart(ctx context.Context, out io.Writer, store *schema.Store, f *spcFlags, key schema.CharKey) error {
	if *f.out == "" {
		return errors.New("spc chart: give --out FILE.svg")
	}
	v, err := dashboard.BuildChart(ctx, store, f.settings, dashboard.ChartRequest{Key: key, From: f.fromTime, To: f.toTime, Points: *f.points, Lang: *f.lang})
	if err != nil {
		return err
	}
	if v.SVG == nil {
		return fmt.Errorf("spc chart %s: %s", key, v.Problem)
	}
	if err := os.WriteFile(*f.out, v.SVG, 0o644); err != nil {
		return fmt.Errorf("spc chart: %w", err)
	}
	limits := "trial limits from the window (none frozen)"
	if v.Frozen != nil {
		limits = fmt.Sprintf("limits version %d frozen by %s at %s", v.Frozen.Version, v.Frozen.FrozenBy, v.Frozen.FrozenAt.Format(time.RFC3339))
	}
	fmt.Fprintf(out, "%s: %d values (%d unknown, left out), %d points drawn, %d flagged; %s; wrote %s\n",
		key, len(v.Series.Points), v.Series.Unknown, len(v.Drawn.Points), len(v.Flags()), limits, *f.out)
	for _, fl := range v.Flags() {
		names := ""
		for i, r := range fl.Rules {
			if i > 0 {
				names += ", "
			}
			names += dashboard.RuleName(r, "en")
		}
		fmt.Fprintf(out, "  %s  %-20s %s %s %.3f\n", fl.Point.Time.Format(time.RFC3339), names, fl.Point.ID, fl.EventID, fl.Point.Location)
	}
	return nil
}

func spcCapability(ctx context.Context, out io.Writer, store *schema.Store, f *spcFlags, key schema.CharKey) error {
	v, err := dashboard.BuildCapability(ctx, store, f.settings, key, f.fromTime, f.toTime)
	if err != nil {
		return err
	}
	if v.Problem != "" {
		return fmt.Errorf("spc capability %s: %s", key, v.Problem)
	}
	r := v.Report
	fmt.Fprintf(out, "Capability of %s, %s to %s\n", key, v.From.Format(time.RFC3339), v.To.Format(time.RFC3339))
	fmt.Fprintf(out, "spec (%s): LSL %s  USL %s\n", v.SpecFrom, bound(v.Spec.LSL.Set, v.Spec.LSL.Value), bound(v.Spec.USL.Set, v.Spec.USL.Value))
	fmt.Fprintf(out, "values %d (%d unknown, left out), subgroups %d, mean %.4f, sigma within %.4f (%s), overall %.4f\n\n",
		r.N, v.Unknown, r.Subgroups, r.Mean, r.SigmaWithin, r.WithinEstimator, r.SigmaOverall)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "INDEX\tVALUE\t%.0f%% CI\tMETHOD\n", r.Confidence*100)
	for _, ix := range []struct {
		name string
		i    spc.Index
	}{{"Cp", r.Cp}, {"Cpk", r.Cpk}, {"Pp", r.Pp}, {"Ppk", r.Ppk}} {
		if !ix.i.Defined {
			fmt.Fprintf(tw, "%s\tundefined\t\t\n", ix.name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f … %.3f\t%s\n", ix.name, ix.i.Value, ix.i.Lower, ix.i.Upper, ix.i.Interval)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "meets"
	if !r.Cpk.Defined || r.Cpk.Value < v.Settings.CpkMin() {
		verdict = "does NOT meet"
	}
	fmt.Fprintf(out, "\nCpk %s the required %.2f.\n", verdict, v.Settings.CpkMin())
	n := r.Normality
	if c := r.Caveat(); c != "" {
		fmt.Fprintf(out, "CAUTION: %s\n", c)
	} else {
		fmt.Fprintf(out, "Normality (Anderson–Darling): not rejected at α = %g (A² = %.3f, p = %.4f).\n", n.Alpha, n.A2Adjusted, n.P)
	}
	return nil
}

func bound(set bool, v float64) string {
	if !set {
		return "none"
	}
	return fmt.Sprint(v)
}
