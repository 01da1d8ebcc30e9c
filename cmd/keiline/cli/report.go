package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/line"
)

const reportUsage = `keiline report shift — the end-of-shift report (as the read-only auditor role)

  report shift [--at TIME | --previous] [--lang en|ja] [--html] [--pdf FILE]

The shift that holds --at (default now; --previous: the one before), as of
now or its end: cars, JPH, FPY, OEE with A/P/Q (planned time from the
calendar's planned start or the line's first data, breaks and planned stops
left out, each station's ideal cycle), the downtime Pareto, top defects,
holds opened and closed, SPC alarms. Text by default; --html writes the
printable page to standard output; --pdf FILE prints it to a PDF with
headless Chromium (--chromium PATH, default: found on PATH).
`

func runReport(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "shift" {
		fmt.Fprint(os.Stderr, reportUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "help") {
			return nil
		}
		return errors.New("report: give a report: shift")
	}
	fs := newFlags("report shift")
	state := fs.String("state", StateDirDefault, "find the database and line config of this `up` state dir")
	dbURL := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL (env KEILINE_DB)")
	config := fs.String("config", "", "line config (default: line.yaml in the state dir)")
	at := fs.String("at", "", "a time within the shift (RFC 3339; default now)")
	previous := fs.Bool("previous", false, "the shift before the one --at is in")
	lang := fs.String("lang", "en", "language: en or ja")
	asHTML := fs.Bool("html", false, "write the printable HTML page to standard output")
	pdf := fs.String("pdf", "", "print the report to this PDF file")
	chromium := fs.String("chromium", "", "Chromium to print the PDF with (default: found on PATH)")
	speed := fs.Float64("speed", 1, "time compression of a simulated line: the takt lasts takt / speed")
	takt := fs.Duration("takt", dashboard.TaktDefault, "the line's takt")
	shiftStart := fs.String("shift-start", "", "time of day (HH:MM, local) a shift starts (default: the calendar's first shift, else 06:00)")
	shiftLength := fs.Duration("shift-length", 0, "a shift's length, plant time (default: the calendar's, else 8h)")
	if _, err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *lang != "en" && *lang != "ja" {
		return fmt.Errorf("report shift: --lang %q: want en or ja", *lang)
	}
	if *config == "" {
		*config = filepath.Join(*state, "line.yaml")
	}
	lc, err := line.Load(*config)
	if err != nil {
		return err
	}
	when := time.Now()
	if *at != "" {
		if when, err = parseTime(*at); err != nil {
			return fmt.Errorf("report shift: --at: %w", err)
		}
	}
	start := *shiftStart
	if start == "" {
		start = lc.Shifts.FirstStart()
	}
	if start == "" {
		start = "06:00"
	}
	startAt, err := shiftStartToday(start, time.Now())
	if err != nil {
		return err
	}
	if *shiftLength == 0 {
		*shiftLength = lc.Shifts.ShiftLength()
	}
	store, done, err := openAuditor(ctx, *dbURL, *state)
	if err != nil {
		return err
	}
	defer done()
	cfg := dashboardConfig(lc, store, "", *speed, nil, toolLogger())
	cfg.Takt, cfg.ShiftStart, cfg.ShiftLength, cfg.Chromium = *takt, startAt, *shiftLength, *chromium
	if *previous {
		when = when.Add(-time.Duration(float64(*shiftLength) / *speed))
	}
	rep, err := dashboard.ShiftReport(ctx, cfg, when)
	if err != nil {
		return err
	}
	switch {
	case *pdf != "":
		var page bytes.Buffer
		if err := dashboard.RenderReport(&page, rep, *lang); err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, dashboard.PDFTimeout)
		defer cancel()
		b, err := dashboard.PrintPDF(pctx, *chromium, page.Bytes())
		if err != nil {
			return err
		}
		if err := os.WriteFile(*pdf, b, 0o644); err != nil {
			return fmt.Errorf("report shift: %w", err)
		}
		fmt.Printf("wrote %s (%d bytes)\n", *pdf, len(b))
		return nil
	case *asHTML:
		return dashboard.RenderReport(os.Stdout, rep, *lang)
	}
	return dashboard.WriteReportText(os.Stdout, rep, *lang)
}
