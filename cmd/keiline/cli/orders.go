package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/keiline/keiline/pipeline/orders"
	"github.com/keiline/keiline/schema"
)

const ordersUsage = `keiline orders — the planner's orders (see docs/orders.md)

  orders import FILE [--config line.yaml]   check a CSV or JSON orders file against the line's products
                                            and import it whole (any bad order: nothing imported)
  orders list [--status open] [--limit N] [--json]
                                            the orders, earliest due first
  orders cancel ID...                       cancel open orders
  orders plan                               sequence the open orders ('keiline orders plan -h')
  orders sequence                           print the build sequence
  orders broadcasts                         print the recorded JIS broadcasts

The database is the one of --state DIR (an up state dir, default .keiline)
or --db URL. The products come from --config, else line.yaml in the state dir.
`

func runOrders(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(os.Stderr, ordersUsage)
		if len(args) == 0 {
			return errors.New("orders: give a command: import, list, cancel, plan, sequence, broadcasts")
		}
		return nil
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "import":
		return ordersImport(ctx, rest, os.Stdout)
	case "list":
		return ordersList(ctx, rest, os.Stdout)
	case "cancel":
		return ordersCancel(ctx, rest, os.Stdout)
	case "plan":
		return runOrdersPlan(ctx, rest)
	case "sequence":
		return runOrdersSequence(ctx, rest)
	case "broadcasts":
		return runOrdersBroadcasts(ctx, rest)
	}
	fmt.Fprint(os.Stderr, ordersUsage)
	return fmt.Errorf("orders: unknown command %q (import, list, cancel, plan, sequence, broadcasts)", cmd)
}

// ordersDBFlags are the database flags of the orders commands.
type ordersDBFlags struct{ state, db *string }

func newOrdersDBFlags(fs *flag.FlagSet) ordersDBFlags {
	return ordersDBFlags{
		state: fs.String("state", "", "use the database (and line.yaml) of this `up` state dir (default "+StateDirDefault+" when --db is not given)"),
		db:    fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL (env KEILINE_DB)"),
	}
}

// open connects to the record as role; done closes it (and the private
// cluster, if this process started it).
func (f ordersDBFlags) open(ctx context.Context, role string) (*schema.Store, func(), error) {
	state := *f.state
	if state == "" && *f.db == "" {
		state = StateDirDefault
	}
	db, err := openDatabase(ctx, *f.db, state, toolLogger())
	if err != nil {
		return nil, nil, err
	}
	store, err := schema.OpenRole(ctx, db.URL, role)
	if err != nil {
		db.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	return store, func() { store.Close(); db.Close(context.WithoutCancel(ctx)) }, nil
}

// ordersImport is keiline orders import FILE: the file is checked against
// the line config's products before the database is opened; a bad file
// imports nothing and its error lists every problem.
func ordersImport(ctx context.Context, args []string, out io.Writer) error {
	flags := newFlags("orders import")
	config := flags.String("config", "", "line config with a products section (default: line.yaml in the state dir)")
	dbf := newOrdersDBFlags(flags)
	pos, err := parse(flags, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("orders import: give one orders file (.csv or .json)")
	}
	path := pos[0]
	lc, err := loadPlanningConfig(*config, *dbf.state)
	if *config == "" && errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("orders import: %w (give the line config with --config, or the state dir of keiline up with --state)", err)
	}
	if err != nil {
		return fmt.Errorf("orders import: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("orders import: %w", err)
	}
	list, err := orders.Parse(path, f, lc.Products)
	f.Close()
	if err != nil {
		return err
	}
	store, done, err := dbf.open(ctx, schema.RoleWriter)
	if err != nil {
		return err
	}
	defer done()
	n, err := store.ImportOrders(ctx, filepath.Base(path), orders.Record(list))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "imported %d orders from %s\n", n, path)
	return nil
}

// ordersList is keiline orders list.
func ordersList(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlags("orders list")
	status := fs.String("status", "", "only orders with this status: "+strings.Join(schema.OrderStatuses, ", "))
	limit := fs.Int("limit", schema.OrdersLimitDefault, "most orders to print")
	asJSON := fs.Bool("json", false, "one JSON object per order and line")
	dbf := newOrdersDBFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("orders list: unexpected argument %q", pos[0])
	}
	if *status != "" && !slices.Contains(schema.OrderStatuses, *status) {
		return fmt.Errorf("orders list: --status %q is not allowed; allowed: %s", *status, strings.Join(schema.OrderStatuses, ", "))
	}
	store, done, err := dbf.open(ctx, schema.RoleAuditor)
	if err != nil {
		return err
	}
	defer done()
	rows, err := store.Orders(ctx, *status, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		for _, r := range rows {
			if r.Options == nil {
				r.Options = []string{}
			}
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tMODEL\tVARIANT\tCOLOUR\tOPTIONS\tDUE\tPRIORITY\tSTATUS\tSOURCE")
	for _, r := range rows {
		due := "-"
		if !r.Due.IsZero() {
			due = r.Due.UTC().Format("2006-01-02 15:04Z")
		}
		opts := strings.Join(r.Options, ";")
		if opts == "" {
			opts = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Model, r.Variant, r.Colour, opts, due, r.Priority, r.Status, r.Source)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d orders\n", len(rows))
	if len(rows) == *limit {
		fmt.Fprintln(out, "(list cut at --limit)")
	}
	return nil
}

// ordersCancel is keiline orders cancel ID...: each open order is
// cancelled; the others are reported.
func ordersCancel(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlags("orders cancel")
	dbf := newOrdersDBFlags(fs)
	ids, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return errors.New("orders cancel: give one or more order ids")
	}
	store, done, err := dbf.open(ctx, schema.RoleWriter)
	if err != nil {
		return err
	}
	defer done()
	var errs []error
	for _, id := range ids {
		if err := store.CancelOrder(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "cancelled order %s\n", id)
	}
	return errors.Join(errs...)
}
