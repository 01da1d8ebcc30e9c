package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/orders"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgserver"
)

// ordersState makes an up state dir holding a line.yaml with a products
// section (one station; its PLC is never reached) and returns it.
func ordersState(t *testing.T) string {
	t.Helper()
	state := t.TempDir()
	st := line.Station{ID: "W01", Zone: "body", Endpoint: "opc.tcp://127.0.0.1:4840", Nodes: map[string]line.Tag{}}
	for _, tag := range st.Tags() {
		st.Nodes[tag] = line.NodeTag("ns=1;s=W01." + tag)
	}
	lc := &line.Config{Version: line.ConfigVersion, Plant: "US1", Line: "L1", Stations: []line.Station{st},
		Products: &line.Products{WMI: "7KL", ModelYear: 2027, PlantCode: "U",
			Models: []line.Model{
				{Code: "KV", Body: "1", Variants: []line.Variant{{Name: "2WD", Code: "TA"}, {Name: "4WD", Code: "TB", Options: []string{"4WD"}}}},
				{Code: "KE", Body: "2", Options: []string{"EV"}, Variants: []line.Variant{{Name: "Std", Code: "EA"}}},
			},
			Colours: []string{"white", "black", "red", "mint", "silver", "blue"},
			Options: []string{"SUNROOF"}}}
	b, err := lc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "line.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return state
}

// startStateDB starts the private PostgreSQL of an up state dir, with its
// keiline database, as up would, and stops it at the end of the test.
func startStateDB(t *testing.T, state string) {
	t.Helper()
	ctx := t.Context()
	srv, err := pgserver.Start(ctx, pgserver.Config{Dir: filepath.Join(state, "pg"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if err := srv.CreateDatabase(ctx, "keiline"); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// dueDay is the due day of goodOrders: the day after tomorrow (UTC),
// derived from the clock.
var dueDay = time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 2).Format(time.DateOnly)

var goodOrders = `order_id,model,variant,colour,options,due,priority
SO-1,KV,2WD,white,,` + dueDay + `,0
SO-2,KV,4WD,red,SUNROOF,` + dueDay + `,3
SO-3,KE,Std,mint,,,
`

// TestOrdersImportRejectsABadFileBeforeTheDatabase: every problem is
// reported with its line, and the database (an address nothing listens on)
// is never reached.
func TestOrdersImportRejectsABadFileBeforeTheDatabase(t *testing.T) {
	state := ordersState(t)
	bad := writeFile(t, "bad.csv", goodOrders+"SO-4,KX,2WD,white,,,\nSO-1,KV,2WD,pink,,,\n")
	var out bytes.Buffer
	err := ordersImport(t.Context(), []string{bad, "--state", state, "--db", "postgres://nobody@127.0.0.1:1/none"}, &out)
	var pe *orders.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *orders.ParseError", err)
	}
	want := bad + ": 3 problem(s); no order imported\n" +
		bad + `:5: order SO-4: model "KX" is not one of the line's; allowed: KV, KE` + "\n" +
		bad + ":6: order SO-1: order id used again (first on line 2)\n" +
		bad + `:6: order SO-1: colour "pink" is not one of the line's; allowed: white, black, red, mint, silver, blue`
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
	if out.Len() != 0 {
		t.Errorf("output %q", out.String())
	}

	noProducts := filepath.Join(t.TempDir(), "line.yaml")
	b, _ := os.ReadFile(filepath.Join(state, "line.yaml"))
	cfg, err := line.Parse("line.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Products = nil
	if b, err = cfg.Marshal(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(noProducts, b, 0o644); err != nil {
		t.Fatal(err)
	}
	good := writeFile(t, "good.csv", goodOrders)
	err = ordersImport(t.Context(), []string{good, "--config", noProducts, "--db", "postgres://nobody@127.0.0.1:1/none"}, &out)
	if err == nil || !strings.Contains(err.Error(), "no products section") {
		t.Errorf("import with a line config without products: %v", err)
	}
}

// TestOrdersCommands imports, lists and cancels orders in the private
// PostgreSQL of a state dir, as keiline up leaves it running.
func TestOrdersCommands(t *testing.T) {
	state := ordersState(t)
	ctx := t.Context()
	startStateDB(t, state)
	run := func(cmd func(context.Context, []string, io.Writer) error, args ...string) (string, error) {
		var out bytes.Buffer
		err := cmd(ctx, append(args, "--state", state), &out)
		return out.String(), err
	}
	imp, list, cancel := ordersImport, ordersList, ordersCancel

	good := writeFile(t, "day.csv", goodOrders)
	if out, err := run(imp, good); err != nil || out != "imported 3 orders from "+good+"\n" {
		t.Fatalf("import: %q, %v", out, err)
	}
	more := writeFile(t, "more.json", `[{"order_id": "SO-9", "model": "KV", "variant": "2WD", "colour": "blue"},
		{"order_id": "SO-2", "model": "KV", "variant": "2WD", "colour": "blue"}]`)
	if _, err := run(imp, more); !errors.Is(err, schema.ErrOrderExists) || !strings.Contains(err.Error(), "SO-2") {
		t.Errorf("import of an existing order id: %v", err)
	}

	out, err := run(list, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got []schema.OrderRow
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r schema.OrderRow
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v in %q", err, l)
		}
		got = append(got, r)
	}
	if len(got) != 3 || got[0].ID != "SO-2" || got[1].ID != "SO-1" || got[2].ID != "SO-3" ||
		strings.Join(got[0].Options, ",") != "4WD,SUNROOF" || got[2].Options[0] != "EV" || got[0].Source != "day.csv" {
		t.Errorf("list --json:\n%s", out)
	}

	if out, err := run(cancel, "SO-1"); err != nil || out != "cancelled order SO-1\n" {
		t.Errorf("cancel: %q, %v", out, err)
	}
	if _, err := run(cancel, "SO-1"); !errors.Is(err, schema.ErrOrderNotOpen) {
		t.Errorf("cancel again: %v", err)
	}
	out, err = run(list, "--status", "open")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	if len(lines) != 5 || strings.Join(strings.Fields(lines[1]), " ") != "SO-2 KV 4WD red 4WD;SUNROOF "+dueDay+" 00:00Z 3 open day.csv" ||
		!strings.HasPrefix(lines[2], "SO-3 ") || lines[3] != "2 orders" {
		t.Errorf("list --status open:\n%s", out)
	}
}
