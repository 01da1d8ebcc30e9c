package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/schema"
)

func runTrace(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("trace: give a question: export, vin VIN")
	}
	fs := newFlags("trace " + args[0])
	state := fs.String("state", StateDirDefault, "find the database of this `up` state dir")
	dbURL := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL (env KEILINE_DB)")
	asJSON := fs.Bool("json", false, "JSON for machines")
	_ = fs.Bool("jsonl", true, "export: one JSON line per car (the only format so far)")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	open := func() (*schema.Store, func(), error) {
		db, err := openDatabase(ctx, *dbURL, *state, toolLogger())
		if err != nil {
			return nil, nil, err
		}
		store, err := schema.Open(ctx, db.URL)
		if err != nil {
			db.Close(context.WithoutCancel(ctx))
			return nil, nil, err
		}
		return store, func() { store.Close(); db.Close(context.WithoutCancel(ctx)) }, nil
	}
	switch args[0] {
	case "export":
		store, done, err := open()
		if err != nil {
			return err
		}
		defer done()
		w := bufio.NewWriter(os.Stdout)
		enc := json.NewEncoder(w)
		if err := store.Export(ctx, func(c schema.CarRecord) error { return enc.Encode(c) }); err != nil {
			return err
		}
		return w.Flush()
	case "vin":
		if len(pos) != 1 {
			return errors.New("trace vin: give one VIN")
		}
		if err := vin.Validate(pos[0]); err != nil {
			return err
		}
		store, done, err := open()
		if err != nil {
			return err
		}
		defer done()
		t, err := store.Trace(ctx, pos[0])
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(traceJSON(t))
		}
		printTrace(t)
		return nil
	}
	return fmt.Errorf("trace: unknown question %q (export, vin)", args[0])
}

func runAudit(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("audit: give a command: verify")
	}
	fs := newFlags("audit verify")
	state := fs.String("state", StateDirDefault, "find the database of this `up` state dir")
	dbURL := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL (env KEILINE_DB)")
	if _, err := parse(fs, args[1:]); err != nil {
		return err
	}
	db, err := openDatabase(ctx, *dbURL, *state, toolLogger())
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	store, err := schema.Open(ctx, db.URL)
	if err != nil {
		return err
	}
	defer store.Close()
	n, problem, err := store.VerifyChain(ctx)
	if err != nil {
		return err
	}
	if problem != nil {
		return fmt.Errorf("audit verify: %d rows read: %w", n, problem)
	}
	fmt.Printf("audit verify: event log intact: %d rows, hash chain whole\n", n)
	return nil
}

type visitJSON struct {
	EventID    string            `json:"event_id"`
	Station    string            `json:"station"`
	Result     string            `json:"result"`
	StartedAt  *time.Time        `json:"started_at,omitempty"`
	FinishedAt time.Time         `json:"finished_at"`
	Parts      []schema.Part     `json:"parts"`
	Joints     []schema.Joint    `json:"joints"`
	Tests      []schema.Test     `json:"tests"`
	Bad        []schema.BadValue `json:"bad_values,omitempty"`
}

type holdJSON struct {
	Station       string     `json:"station"`
	Kind          string     `json:"kind"`
	Reason        string     `json:"reason"`
	OpenedEventID string     `json:"opened_event_id"`
	OpenedAt      time.Time  `json:"opened_at"`
	ClosedEventID string     `json:"closed_event_id,omitempty"`
	ClosedAt      *time.Time `json:"closed_at,omitempty"`
}

type traceOut struct {
	VIN         string      `json:"vin"`
	Model       string      `json:"model"`
	Variant     string      `json:"variant"`
	Colour      string      `json:"colour"`
	FirstSeenAt time.Time   `json:"first_seen_at"`
	LastStation string      `json:"last_station"`
	ShippedAt   *time.Time  `json:"shipped_at,omitempty"`
	Visits      []visitJSON `json:"visits"`
	Holds       []holdJSON  `json:"holds"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func traceJSON(t *schema.CarTrace) traceOut {
	v := t.Vehicle
	out := traceOut{VIN: v.VIN, Model: v.Model, Variant: v.Variant, Colour: v.Colour, FirstSeenAt: v.FirstSeenAt,
		LastStation: v.LastStation, ShippedAt: timePtr(v.ShippedAt), Visits: []visitJSON{}, Holds: []holdJSON{}}
	for _, x := range t.Visits {
		out.Visits = append(out.Visits, visitJSON{EventID: x.EventID, Station: x.Station, Result: x.Result, StartedAt: timePtr(x.StartedAt),
			FinishedAt: x.FinishedAt, Parts: x.Parts, Joints: x.Joints, Tests: x.Tests, Bad: x.Bad})
	}
	for _, h := range t.Holds {
		out.Holds = append(out.Holds, holdJSON{Station: h.Station, Kind: h.Kind, Reason: h.Reason, OpenedEventID: h.EventID,
			OpenedAt: h.At, ClosedEventID: h.ClosedEventID, ClosedAt: timePtr(h.ClosedAt)})
	}
	return out
}

func printTrace(t *schema.CarTrace) {
	v := t.Vehicle
	status := "on the line at " + v.LastStation
	if !v.ShippedAt.IsZero() {
		status = "shipped " + v.ShippedAt.Local().Format(time.DateTime)
	}
	open := 0
	for _, h := range t.Holds {
		if h.ClosedAt.IsZero() {
			open++
		}
	}
	if open > 0 {
		status += fmt.Sprintf(", ON HOLD (%d open)", open)
	}
	fmt.Printf("VIN %s  %s %s %s  — %s\n\n", v.VIN, v.Model, v.Variant, v.Colour, status)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "STATION\tFINISHED\tRESULT\tRECORD\tEVENT")
	for _, x := range t.Visits {
		fmt.Fprintf(w, "%s\t%s\t%s\t\t%s\n", x.Station, x.FinishedAt.Local().Format("15:04:05.000"), x.Result, x.EventID)
		for _, p := range x.Parts {
			fmt.Fprintf(w, "\t\t\tpart %s serial %s lot %s (%s)\t\n", p.PartNumber, p.Serial, p.Lot, p.Supplier)
		}
		for _, j := range x.Joints {
			fmt.Fprintf(w, "\t\t\tjoint %s tool %s %.2f Nm %.1f° %s\t\n", j.Joint, j.Tool, j.TorqueNm, j.AngleDeg, okText(j.OK))
		}
		for _, e := range x.Tests {
			fmt.Fprintf(w, "\t\t\ttest %s %g %s [%g..%g] %s\t\n", e.Name, e.Value, e.Unit, e.Low, e.High, okText(e.OK))
		}
		for _, b := range x.Bad {
			fmt.Fprintf(w, "\t\t\tBAD VALUE %s (%s): %s\t\n", b.Tag, b.NodeID, b.Reason)
		}
	}
	w.Flush()
	if len(t.Holds) > 0 {
		fmt.Println("\nHOLDS")
		w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "STATION\tKIND\tOPENED\tCLOSED\tREASON")
		for _, h := range t.Holds {
			closed := "open"
			if !h.ClosedAt.IsZero() {
				closed = h.ClosedAt.Local().Format("15:04:05") + " by " + h.ClosedEventID
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", h.Station, h.Kind, h.At.Local().Format("15:04:05"), closed, h.Reason)
		}
		w.Flush()
	}
}

func okText(ok bool) string {
	if ok {
		return "OK"
	}
	return "NOK"
}
