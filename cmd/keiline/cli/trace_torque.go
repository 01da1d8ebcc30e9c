package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/traceweb"
)

// traceTightenings answers trace tightenings: by tool, controller or pset.
func traceTightenings(ctx context.Context, w io.Writer, f *traceFlags, pos []string) error {
	if len(pos) != 0 {
		return errors.New("trace tightenings: give --tool, --controller or --station with --pset, not arguments")
	}
	if err := f.window(time.Now()); err != nil {
		return fmt.Errorf("trace tightenings: %w", err)
	}
	q := schema.TighteningQuery{Tool: *f.tool, Controller: *f.controller, Station: *f.station, Pset: *f.pset,
		From: f.fromTime, To: f.toTime, Result: *f.result, Limit: *f.limit}
	store, done, err := openAuditor(ctx, *f.db, *f.state)
	if err != nil {
		return err
	}
	defer done()
	a, err := store.ByTightening(ctx, q)
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
}

// printTightenings writes a table of tightening results to w.
func printTightenings(w *tabwriter.Writer, ts []schema.TighteningRecord) {
	fmt.Fprintln(w, "MADE\tVIN\tSTATION\tJOINT\tCLASS\tCONTROLLER\tID\tTOOL\tPSET\tBATCH\tTORQUE N·m\tANGLE °\tRESULT\tEVENT")
	for _, t := range ts {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d/%d\t%s\t%s\t%s\t%s\n", clock(t.MadeAt), t.VIN, t.Station, t.Joint, t.Class,
			t.Controller, t.TighteningID, t.ToolSerial, t.Pset, t.BatchCounter, t.BatchSize,
			limits(t.TorqueNm, t.TorqueMinNm, t.TorqueMaxNm, "%.2f"), limits(t.AngleDeg, t.AngleMinDeg, t.AngleMaxDeg, "%.1f"), tighteningVerdict(t), t.EventID)
	}
}

// printBirthTightenings writes a car's tightenings under its route.
func printBirthTightenings(out io.Writer, ts []schema.BirthTightening) {
	if len(ts) == 0 {
		return
	}
	fmt.Fprintln(out, "\nTIGHTENINGS")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "MADE\tSTATION\tJOINT\tCLASS\tCONTROLLER\tID\tTOOL\tPSET\tBATCH\tTORQUE N·m\tANGLE °\tRESULT\tSEQ")
	for _, b := range ts {
		t := b.TighteningRecord
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d/%d\t%s\t%s\t%s\t%s\n", clock(t.MadeAt), t.Station, t.Joint, t.Class,
			t.Controller, t.TighteningID, t.ToolSerial, t.Pset, t.BatchCounter, t.BatchSize,
			limits(t.TorqueNm, t.TorqueMinNm, t.TorqueMaxNm, "%.2f"), limits(t.AngleDeg, t.AngleMinDeg, t.AngleMaxDeg, "%.1f"), tighteningVerdict(t),
			strconv.FormatInt(b.Seq, 10))
	}
	w.Flush()
}

// limits is "108.52 (95.00..120.00)", a value with its limits when known.
func limits(v, lo, hi *float64, format string) string {
	s := event.Num(v, format, "")
	if lo != nil && hi != nil {
		s += " (" + event.Num(lo, format, "") + ".." + event.Num(hi, format, "") + ")"
	}
	return s
}

// tighteningVerdict is OK or NOK, flagged when made while the tool was
// disabled.
func tighteningVerdict(t schema.TighteningRecord) string {
	if t.WhileDisabled {
		return t.Result + " MADE WHILE DISABLED"
	}
	return t.Result
}
