package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/schema"
)

// runServe runs the dashboard alone, against the record of a line.
func runServe(ctx context.Context, args []string) error {
	fs := newFlags("serve")
	httpAddr := fs.String("http", dashboard.AddrDefault, "dashboard address")
	state := fs.String("state", StateDirDefault, "use the database and line config of this `up` state dir")
	dbURL := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL (env KEILINE_DB)")
	config := fs.String("config", "", "line config (default: line.yaml in the state dir)")
	speed := fs.Float64("speed", 1, "time compression of a simulated line: the takt lasts takt / speed")
	takt := fs.Duration("takt", dashboard.TaktDefault, "the line's takt")
	shiftStart := fs.String("shift-start", "06:00", "time of day (HH:MM, local) a shift starts")
	shiftLength := fs.Duration("shift-length", dashboard.ShiftLengthDefault, "a shift's length (plant time)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	log := newLogger(os.Stderr)
	if *config == "" {
		*config = filepath.Join(*state, "line.yaml")
	}
	lc, err := line.Load(*config)
	if err != nil {
		return err
	}
	start, err := shiftStartToday(*shiftStart, time.Now())
	if err != nil {
		return err
	}
	db, err := openDatabase(ctx, *dbURL, *state, log)
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	store, err := schema.OpenRole(ctx, db.URL, schema.RoleAuditor)
	if err != nil {
		return err
	}
	defer store.Close()
	cfg := dashboardConfig(lc, store, *httpAddr, *speed, nil, log)
	cfg.Takt, cfg.ShiftStart, cfg.ShiftLength = *takt, start, *shiftLength
	dash, err := dashboard.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("keiline serve: dashboard at %s\n", dash.URL())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return dash.Shutdown(sctx)
}

// dashboardConfig describes a line to the dashboard.
func dashboardConfig(lc *line.Config, store *schema.Store, addr string, speed float64, wake <-chan struct{}, log *slog.Logger) dashboard.Config {
	cfg := dashboard.Config{Addr: addr, Store: store, Plant: lc.Plant, Line: lc.Line, Speed: speed, Wake: wake, Logger: log}
	cfg.SPC, cfg.Calendar = &lc.SPC, &lc.Shifts // issue 17: SPC settings and the shift calendar
	for _, s := range lc.Stations {
		cfg.Stations = append(cfg.Stations, dashboard.Station{ID: s.ID, Name: s.Name, Zone: s.Zone, Optional: s.Optional})
	}
	return cfg
}

// shiftStartToday returns the time of day hhmm ("06:00") on now's day.
func shiftStartToday(hhmm string, now time.Time) (time.Time, error) {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		return time.Time{}, fmt.Errorf("--shift-start %q: want HH:MM", hhmm)
	}
	y, m, d := now.Date()
	return time.Date(y, m, d, t.Hour(), t.Minute(), 0, 0, now.Location()), nil
}
