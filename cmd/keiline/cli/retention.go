package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keiline/keiline/schema"
)

// openOwner opens the record as the URL's user, the schema's owner, who
// alone may change partitions and the retention policy.
func openOwner(ctx context.Context, dbURL, state string) (*schema.Store, func(), error) {
	db, err := openDatabase(ctx, dbURL, state, toolLogger())
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

// runPartitions lists the monthly partitions of the traceability tables.
func runPartitions(ctx context.Context, args []string) error {
	fs := newFlags("history partitions")
	state := fs.String("state", StateDirDefault, "find the database of this `up` state dir")
	dbURL := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL of the schema's owner (env KEILINE_DB)")
	asJSON := fs.Bool("json", false, "JSON for machines")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	store, done, err := openOwner(ctx, *dbURL, *state)
	if err != nil {
		return err
	}
	defer done()
	ps, err := store.Partitions(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(os.Stdout, ps)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TABLE\tMONTH\tPARTITION\tROWS (EST.)\tSIZE\tREMOVED")
	for _, p := range ps {
		removed := ""
		if p.RemovedAt != nil {
			removed = p.RemovedAs + " " + p.RemovedAt.Local().Format(time.DateOnly)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%.1f MB\t%s\n", p.Table, p.Month.Format("2006-01"), p.Name, max(p.Rows, 0), float64(p.Bytes)/1e6, removed)
	}
	return w.Flush()
}

// runRetention shows, sets or applies the retention policy.
func runRetention(ctx context.Context, args []string) error {
	sub := "show"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := newFlags("history retention " + sub)
	state := fs.String("state", StateDirDefault, "find the database of this `up` state dir")
	dbURL := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL of the schema's owner (env KEILINE_DB)")
	keep := fs.String("keep", "", "set: history kept, in years (15y) or months (180m)")
	ahead := fs.Int("ahead", 0, "set: months of partitions made ahead of the newest event")
	mode := fs.String("mode", "", "set: detach (keep expired partitions as tables to archive) or drop")
	dryRun := fs.Bool("dry-run", false, "apply: only say what would go")
	nowFlag := fs.String("now", "", "apply: the time to count back from (default now)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	store, done, err := openOwner(ctx, *dbURL, *state)
	if err != nil {
		return err
	}
	defer done()
	p, err := store.Retention(ctx)
	if err != nil {
		return err
	}
	switch sub {
	case "show":
	case "set":
		if *keep != "" {
			if p.KeepMonths, err = parseMonths(*keep); err != nil {
				return fmt.Errorf("history retention set: --keep: %w", err)
			}
		}
		if *ahead != 0 {
			p.AheadMonths = *ahead
		}
		if *mode != "" {
			p.Mode = *mode
		}
		if err := store.SetRetention(ctx, p); err != nil {
			return err
		}
	case "apply":
		now := time.Now()
		if *nowFlag != "" {
			if now, err = parseTime(*nowFlag); err != nil {
				return fmt.Errorf("history retention apply: --now: %w", err)
			}
		}
		res, err := store.ApplyRetention(ctx, now, *dryRun)
		if err != nil {
			return err
		}
		var months []string
		for _, m := range res.Months {
			months = append(months, m.Format("2006-01"))
		}
		verb := map[bool]string{true: "would remove", false: "removed"}[*dryRun]
		if len(months) == 0 {
			fmt.Printf("history retention: nothing before %s to remove\n", res.Cutoff.Format(time.DateOnly))
			return nil
		}
		fmt.Printf("history retention: %s %s (%d event log rows, %s partitions), %d cars last seen before %s\n",
			verb, strings.Join(months, ", "), res.Events, res.Mode, res.Cars, res.Cutoff.Format(time.DateOnly))
		return nil
	default:
		return fmt.Errorf("history retention: unknown command %q (show, set, apply)", sub)
	}
	fmt.Printf("retention: keep %d months (%.1f years); partitions made %d months ahead; expired partitions are %s by `keiline history retention apply`\n",
		p.KeepMonths, float64(p.KeepMonths)/12, p.AheadMonths, map[string]string{schema.RetentionDetach: "detached", schema.RetentionDrop: "dropped"}[p.Mode])
	return nil
}

// parseMonths reads 15y, 180m or a bare number of months.
func parseMonths(s string) (int, error) {
	n, unit := s, 1
	switch {
	case strings.HasSuffix(s, "y"):
		n, unit = strings.TrimSuffix(s, "y"), 12
	case strings.HasSuffix(s, "m"):
		n = strings.TrimSuffix(s, "m")
	}
	v, err := strconv.Atoi(n)
	if err != nil || v < 1 {
		return 0, fmt.Errorf("%q: want years (15y) or months (180m)", s)
	}
	return v * unit, nil
}
