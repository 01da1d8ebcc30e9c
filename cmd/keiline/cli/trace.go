package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/traceweb"
)

const traceUsage = `keiline trace — ask the record (as the read-only auditor role)

  trace vin VIN                         the birth record: route, parts, joints, tests, defects, rework, holds, gate
  trace part SERIAL...                  which cars got these part serials, and where they are now
  trace lot LOT... [--part-number P] [--supplier S]
                                        which cars got parts of these lots, and where they are now
  trace tool TOOL --from T1 --to T2     every joint the tool made in the window, and the cars
  trace station ID --from T1 --to T2 [--rows visits|joints|tests] [--name JOINT|TEST] [--result OK|NOK]
                                        what the station did in the window (every NOK joint J last week:
                                        trace station C04 --rows joints --name lug_fl_1 --result NOK --last 168h)
  trace tightenings (--tool SERIAL | --controller ID | --station ID --pset N) --from T1 --to T2 [--result OK|NOK]
                                        every tightening controller result of one tool (serial), one
                                        controller, or one parameter set at a station, and the cars
  trace export --jsonl                  every car, in the simulator's truth file shape, with its tightenings

Output is a table; --json or --csv for machines. The database is the one of
--state DIR (an up state dir) or --db URL. Times are RFC 3339 or dates;
--last 7d is the window up to --to (default now).
`

// traceFlags are the flags every trace question takes.
type traceFlags struct {
	state, db            *string
	asJSON, asCSV        *bool
	from, to, last       *string
	result, rows, name   *string
	partNumber, supplier *string
	tool, controller     *string
	station              *string
	pset                 *int
	limit                *int
	fromTime, toTime     time.Time
}

func newTraceFlags(fs *flag.FlagSet) *traceFlags {
	f := &traceFlags{
		state:      fs.String("state", StateDirDefault, "find the database of this `up` state dir"),
		db:         fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL (env KEILINE_DB); queries run as keiline_auditor"),
		asJSON:     fs.Bool("json", false, "JSON for machines"),
		asCSV:      fs.Bool("csv", false, "CSV for spreadsheets"),
		from:       fs.String("from", "", "window start (RFC 3339 or date)"),
		to:         fs.String("to", "", "window end, exclusive (default now)"),
		last:       fs.String("last", "", "window of this length up to --to (e.g. 8h, 7d)"),
		result:     fs.String("result", "", "only OK or NOK results"),
		rows:       fs.String("rows", schema.RowsVisits, "station: visits, joints or tests"),
		name:       fs.String("name", "", "station: only this joint or test"),
		partNumber: fs.String("part-number", "", "lot: only this part number"),
		supplier:   fs.String("supplier", "", "lot: only this supplier"),
		limit:      fs.Int("limit", schema.TraceLimitDefault, "most rows in a list answer"),
		tool:       fs.String("tool", "", "tightenings: the tool's serial number"),
		controller: fs.String("controller", "", "tightenings: the controller's id (C04-NR1)"),
		station:    fs.String("station", "", "tightenings: the station of --pset"),
		pset:       fs.Int("pset", 0, "tightenings: the parameter set (with --station)"),
	}
	_ = fs.Bool("jsonl", true, "export: one JSON line per car (the only export format)")
	return f
}

// window reads --from, --to and --last.
func (f *traceFlags) window(now time.Time) error {
	f.toTime = now
	if *f.to != "" {
		t, err := parseTime(*f.to)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		f.toTime = t
	}
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
	default:
		return errors.New("give a window: --from T1 [--to T2] or --last 8h")
	}
	return nil
}

// openAuditor opens the record as the read-only auditor role; done closes
// it (and the private cluster, if this process started it).
func openAuditor(ctx context.Context, dbURL, state string) (*schema.Store, func(), error) {
	db, err := openDatabase(ctx, dbURL, state, toolLogger())
	if err != nil {
		return nil, nil, err
	}
	store, err := schema.OpenRole(ctx, db.URL, schema.RoleAuditor)
	if err != nil {
		db.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	return store, func() { store.Close(); db.Close(context.WithoutCancel(ctx)) }, nil
}

func runTrace(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(os.Stderr, traceUsage)
		if len(args) == 0 {
			return errors.New("trace: give a question: vin, part, lot, tool, station, tightenings, export")
		}
		return nil
	}
	question := args[0]
	fs := newFlags("trace " + question)
	f := newTraceFlags(fs)
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if *f.asJSON && *f.asCSV {
		return errors.New("trace: give --json or --csv, not both")
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	switch question {
	case "export":
		store, done, err := openAuditor(ctx, *f.db, *f.state)
		if err != nil {
			return err
		}
		defer done()
		enc := json.NewEncoder(w)
		return store.Export(ctx, func(c schema.CarRecord) error { return enc.Encode(c) })
	case "vin":
		if len(pos) != 1 {
			return errors.New("trace vin: give one VIN")
		}
		if err := vin.Validate(pos[0]); err != nil {
			return err
		}
		store, done, err := openAuditor(ctx, *f.db, *f.state)
		if err != nil {
			return err
		}
		defer done()
		t, err := store.Trace(ctx, pos[0])
		if err != nil {
			return err
		}
		b := t.Birth()
		switch {
		case *f.asJSON:
			return writeJSON(w, b)
		case *f.asCSV:
			return traceweb.WriteBirthCSV(w, b)
		}
		printBirth(w, b)
		return nil
	case "part", "lot":
		if len(pos) == 0 {
			return fmt.Errorf("trace %s: give one or more %ss", question, map[string]string{"part": "serial", "lot": "lot"}[question])
		}
		store, done, err := openAuditor(ctx, *f.db, *f.state)
		if err != nil {
			return err
		}
		defer done()
		var a *schema.PartAnswer
		if question == "part" {
			a, err = store.ByPart(ctx, pos)
		} else {
			a, err = store.ByLot(ctx, schema.LotQuery{Lots: pos, PartNumber: *f.partNumber, Supplier: *f.supplier, Limit: *f.limit})
		}
		if err != nil {
			return err
		}
		switch {
		case *f.asJSON:
			return writeJSON(w, a)
		case *f.asCSV:
			return traceweb.WritePartsCSV(w, a)
		}
		printParts(w, a)
		return nil
	case "tool", "station":
		if len(pos) != 1 {
			return fmt.Errorf("trace %s: give one %s", question, question)
		}
		if err := f.window(time.Now()); err != nil {
			return fmt.Errorf("trace %s: %w", question, err)
		}
		store, done, err := openAuditor(ctx, *f.db, *f.state)
		if err != nil {
			return err
		}
		defer done()
		var a *schema.WindowAnswer
		if question == "tool" {
			a, err = store.ByTool(ctx, schema.ToolQuery{Tool: pos[0], From: f.fromTime, To: f.toTime, Result: *f.result, Limit: *f.limit})
		} else {
			a, err = store.ByStation(ctx, schema.StationQuery{Station: pos[0], From: f.fromTime, To: f.toTime,
				Rows: *f.rows, Name: *f.name, Result: *f.result, Limit: *f.limit})
		}
		if err != nil {
			return err
		}
		switch {
		case *f.asJSON:
			return writeJSON(w, a)
		case *f.asCSV:
			return traceweb.WriteWindowCSV(w, a)
		}
		printWindow(w, a)
		return nil
	case "tightenings":
		return traceTightenings(ctx, w, f, pos)
	}
	fmt.Fprint(os.Stderr, traceUsage)
	return fmt.Errorf("trace: unknown question %q (vin, part, lot, tool, station, tightenings, export)", question)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// clock formats a time for tables: local time, milliseconds.
func clock(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05.000") }

func okText(ok *bool) string { return event.Verdict(ok) }

func statusText(c schema.CarStatus) string {
	switch {
	case c.ShippedAt != nil && c.OpenHolds > 0:
		return fmt.Sprintf("shipped %s WITH %d OPEN HOLDS", clock(*c.ShippedAt), c.OpenHolds)
	case c.ShippedAt != nil:
		return "shipped " + clock(*c.ShippedAt)
	case c.OpenHolds > 0:
		return fmt.Sprintf("ON HOLD (%d open) at %s", c.OpenHolds, c.LastStation)
	}
	return "on the line at " + c.LastStation
}

func printBirth(out io.Writer, b schema.BirthRecord) {
	gate := "not yet at the quality gate"
	if n := len(b.Gate); n > 0 {
		g := b.Gate[n-1]
		gate = fmt.Sprintf("released by %s (%s)", g.Station, g.EventID)
		if !g.Released {
			gate = fmt.Sprintf("BLOCKED at %s (%s): %s", g.Station, g.EventID, g.Reason)
		}
	}
	fmt.Fprintf(out, "VIN %s  %s %s %s  — %s\nquality gate: %s\n\n", b.VIN, b.Model, b.Variant, b.Colour, statusText(b.CarStatus), gate)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "STATION\tFINISHED\tRESULT\tRECORD\tEVENT\tSEQ")
	for _, x := range b.Visits {
		rework := ""
		if x.Rework {
			rework = "rework"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", x.Station, clock(x.FinishedAt), x.Result, rework, x.EventID, x.Seq)
		for _, p := range x.Parts {
			serial := ""
			if p.Serial != "" {
				serial = " serial " + p.Serial
			}
			fmt.Fprintf(w, "\t\t\tpart %s%s lot %s (%s)\t\t\n", p.PartNumber, serial, p.Lot, p.Supplier)
		}
		for _, j := range x.Joints {
			fmt.Fprintf(w, "\t\t\tjoint %s %s %s\t\t\n", j.Joint, j.Describe(), okText(j.OK))
		}
		for _, e := range x.Tests {
			fmt.Fprintf(w, "\t\t\ttest %s %s %s\t\t\n", e.Name, e.Describe(), okText(e.OK))
		}
		for _, bv := range x.Bad {
			fmt.Fprintf(w, "\t\t\tBAD VALUE %s (%s): %s\t\t\n", bv.Tag, bv.NodeID, bv.Reason)
		}
	}
	w.Flush()
	printBirthTightenings(out, b.Tightenings)
	if len(b.Defects) > 0 {
		fmt.Fprintln(out, "\nDEFECTS AND REWORK")
		w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "STATION\tKIND\tNAME\tDEFECT\tEVENT\tREWORKED")
		for _, d := range b.Defects {
			redo := "NOT REWORKED"
			if d.ReworkEventID != "" {
				redo = fmt.Sprintf("at %s: %s (%s)", d.ReworkStation, d.ReworkDetail, d.ReworkEventID)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Station, d.Kind, d.Name, d.Detail, d.EventID, redo)
		}
		w.Flush()
	}
	if len(b.Holds) > 0 {
		fmt.Fprintln(out, "\nHOLDS")
		w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "STATION\tKIND\tOPENED\tBY\tCLOSED\tREASON")
		for _, h := range b.Holds {
			closed := "OPEN"
			if h.ClosedAt != nil {
				closed = clock(*h.ClosedAt) + " by " + h.ClosedEventID
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Station, h.Kind, clock(h.OpenedAt), h.OpenedEventID, closed, h.Reason)
		}
		w.Flush()
	}
	printDecisions(out, b.Decisions)
}

// printDecisions lists people's decisions about the car: who, in which
// role, where, when, what, why, and the signature's meaning.
func printDecisions(out io.Writer, ds []schema.BirthDecision) {
	if len(ds) == 0 {
		return
	}
	fmt.Fprintln(out, "\nDECISIONS BY PEOPLE")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "WHEN\tSTATION\tACTION\tWHO\tROLE\tWHY\tSIGNED\tEVENT\tSEQ")
	for _, d := range ds {
		signed := "-"
		if d.Meaning != "" {
			signed = fmt.Sprintf("%q", d.Meaning)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", clock(d.At), d.Station, d.Action, d.User, d.Role, d.Why(), signed, d.EventID, d.Seq)
	}
	w.Flush()
}

func printCars(out io.Writer, cars []schema.CarStatus, truncated bool) {
	fmt.Fprintf(out, "\n%d cars\n", len(cars))
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "VIN\tMODEL\tWHERE\tLAST STATION\tOPEN HOLDS")
	for _, c := range cars {
		fmt.Fprintf(w, "%s\t%s %s %s\t%s\t%s\t%d\n", c.VIN, c.Model, c.Variant, c.Colour, statusText(c), c.LastStation, c.OpenHolds)
	}
	w.Flush()
	if truncated {
		fmt.Fprintln(out, "(answer cut at --limit rows: narrow the question)")
	}
}

func printParts(out io.Writer, a *schema.PartAnswer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "INSTALLED\tVIN\tSTATION\tPART NUMBER\tSERIAL\tLOT\tSUPPLIER\tEVENT")
	for _, u := range a.Uses {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clock(u.InstalledAt), u.VIN, u.Station, u.PartNumber, u.Serial, u.Lot, u.Supplier, u.EventID)
	}
	w.Flush()
	printCars(out, a.Cars, a.Truncated)
}

func printWindow(out io.Writer, a *schema.WindowAnswer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	switch {
	case a.Tightenings != nil:
		printTightenings(w, a.Tightenings)
	case a.Joints != nil:
		fmt.Fprintln(w, "MADE\tVIN\tSTATION\tJOINT\tTOOL\tTORQUE Nm\tANGLE °\tRESULT\tEVENT")
		for _, j := range a.Joints {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clock(j.MadeAt), j.VIN, j.Station, j.Joint, j.Tool, event.Num(j.TorqueNm, "%.2f", ""), event.Num(j.AngleDeg, "%.1f", ""), okText(j.OK), j.EventID)
		}
	case a.Tests != nil:
		fmt.Fprintln(w, "TESTED\tVIN\tSTATION\tTEST\tVALUE\tUNIT\tLIMITS\tRESULT\tEVENT")
		for _, x := range a.Tests {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s..%s\t%s\t%s\n", clock(x.TestedAt), x.VIN, x.Station, x.Name, event.Num(x.Value, "%g", ""), x.Unit, event.Num(x.Low, "%g", ""), event.Num(x.High, "%g", ""), okText(x.OK), x.EventID)
		}
	default:
		fmt.Fprintln(w, "FINISHED\tVIN\tSTATION\tRESULT\tEVENT")
		for _, v := range a.Visits {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", clock(v.FinishedAt), v.VIN, v.Station, v.Result, v.EventID)
		}
	}
	w.Flush()
	printCars(out, a.Cars, a.Truncated)
}

// anchorList is the repeatable --anchor flag.
type anchorList []schema.Anchor

func (a *anchorList) String() string { return fmt.Sprint(len(*a)) }
func (a *anchorList) Set(s string) error {
	x, err := schema.ParseAnchor(s)
	if err != nil {
		return err
	}
	*a = append(*a, x)
	return nil
}

func runAudit(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("audit: give a command: verify")
	}
	fs := newFlags("audit verify")
	state := fs.String("state", StateDirDefault, "find the database of this `up` state dir")
	dbURL := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL (env KEILINE_DB); the audit runs as keiline_auditor")
	var anchors anchorList
	fs.Var(&anchors, "anchor", "a chain head kept from an earlier verify, `SEQ:HASH` (repeatable)")
	maxProblems := fs.Int("max-problems", schema.AuditMaxProblemsDefault, "most problems reported per check")
	asJSON := fs.Bool("json", false, "JSON for machines")
	if _, err := parse(fs, args[1:]); err != nil {
		return err
	}
	store, done, err := openAuditor(ctx, *dbURL, *state)
	if err != nil {
		return err
	}
	defer done()
	start := time.Now()
	r, err := store.Audit(ctx, schema.AuditOptions{MaxProblems: *maxProblems, Anchors: anchors})
	if err != nil {
		return err
	}
	head := fmt.Sprintf("%d:%x", r.Head.Seq, r.Head.Hash)
	if *asJSON {
		if err := writeJSON(os.Stdout, r); err != nil {
			return err
		}
	} else {
		for _, p := range r.Problems {
			fmt.Println("PROBLEM", p)
		}
		if r.Truncated {
			fmt.Println("(more problems not shown: --max-problems)")
		}
		if len(r.Problems) == 0 {
			fmt.Printf("audit verify: record intact: %d event log rows, hash chain whole, event index, envelopes, derived rows, holds and gate decisions match (%s)\n",
				r.Rows, time.Since(start).Round(time.Millisecond))
		}
		for _, c := range r.Conflicts {
			fmt.Printf("CONFLICT seq %d at %s, station %s: %s\n", c.Seq, c.At.UTC().Format(time.RFC3339), c.Station, c.Text)
		}
		if len(r.Conflicts) > 0 {
			fmt.Printf("audit verify: %d conflicts kept in the chain (an event id sent again with other content); the record holds the first of each: look into them\n", len(r.Conflicts))
		}
		fmt.Printf("audit verify: chain head %s (keep it outside the database; check it later with --anchor %s)\n", head, head)
	}
	if len(r.Problems) > 0 {
		first := r.Problems[0]
		return fmt.Errorf("audit verify: %d problems in %d event log rows; first: %s", len(r.Problems), r.Rows, first)
	}
	return nil
}
