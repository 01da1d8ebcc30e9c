package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/traceweb"
)

// runHistory runs `keiline history …`: the record's history at plant
// scale — synthetic history, the trace benchmark, partitions and
// retention.
func runHistory(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("history: give a command: gen, bench, partitions, retention")
	}
	switch args[0] {
	case "gen":
		return runHistoryGen(ctx, args[1:])
	case "bench":
		return runHistoryBench(ctx, args[1:])
	case "partitions":
		return runPartitions(ctx, args[1:])
	case "retention":
		return runRetention(ctx, args[1:])
	}
	return fmt.Errorf("history: unknown command %q (gen, bench, partitions, retention)", args[0])
}

// HistoryDatabaseDefault is the database `history gen` fills in an `up`
// state dir's private cluster: never the line's own.
const HistoryDatabaseDefault = "history"

func runHistoryGen(ctx context.Context, args []string) error {
	fs := newFlags("history gen")
	state := fs.String("state", StateDirDefault, "use the private PostgreSQL of this state dir")
	dbURL := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL of the owner; the database named by --database is made on its server (env KEILINE_DB)")
	dbName := fs.String("database", HistoryDatabaseDefault, "database to fill (made when absent; must hold no events)")
	cars := fs.Int("cars", 10000, "cars to generate")
	seed := fs.Int64("seed", 1, "seed of the simulated plant")
	end := fs.String("end", "", "history ends before this day (RFC 3339 or 2006-01-02; default today)")
	batch := fs.Int("batch", GenBatchDefault, "events per transaction")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	endAt := time.Now()
	if *end != "" {
		t, err := parseTime(*end)
		if err != nil {
			return fmt.Errorf("history gen: --end: %w", err)
		}
		endAt = t
	}
	db, err := openDatabase(ctx, *dbURL, *state, toolLogger())
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	target, err := ensureDatabase(ctx, db.URL, *dbName)
	if err != nil {
		return err
	}
	start := time.Now()
	n, err := loadHistory(ctx, target, genOptions{Cars: *cars, Seed: *seed, End: endAt, Batch: *batch}, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Printf("history gen: %d cars in database %s in %s\n", n, *dbName, time.Since(start).Round(time.Second))
	return nil
}

// loadHistory fills the database at ownerURL with o.Cars cars of synthetic
// history unless it already holds them, writing as the tracker's writer
// role, and returns how many cars it holds.
func loadHistory(ctx context.Context, ownerURL string, o genOptions, progress io.Writer) (int, error) {
	owner, err := schema.Open(ctx, ownerURL)
	if err != nil {
		return 0, err
	}
	c, err := owner.Counts(ctx)
	owner.Close()
	if err != nil {
		return 0, err
	}
	switch {
	case c.Events > 0 && int(c.Shipped) == o.Cars && c.Vehicles == c.Shipped:
		fmt.Fprintf(progress, "history: %d cars already loaded\n", o.Cars)
		return o.Cars, nil
	case c.Events > 0:
		return 0, fmt.Errorf("history: the database holds %d events and %d cars, not the %d cars asked for: drop it or name another (--database)", c.Events, c.Vehicles, o.Cars)
	}
	// Bulk history needs no fsync per batch: a crash means loading again.
	u, err := url.Parse(ownerURL)
	if err != nil {
		return 0, err
	}
	q := u.Query()
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	w, err := schema.OpenAs(ctx, u.String(), schema.RoleWriter)
	if err != nil {
		return 0, err
	}
	defer w.Close()
	if o.Plant == "" {
		o.Plant, o.Line = PlantDefault, LineDefault
	}
	start, last := time.Now(), time.Now()
	o.Progress = func(n int) {
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			fmt.Fprintf(progress, "history: %d of %d cars (%.0f cars/s)\n", n, o.Cars, float64(n)/time.Since(start).Seconds())
		}
	}
	if err := generateHistory(ctx, w, o); err != nil {
		return 0, err
	}
	owner, err = schema.Open(ctx, ownerURL)
	if err != nil {
		return 0, err
	}
	defer owner.Close()
	fmt.Fprintf(progress, "history: %d cars loaded in %s; vacuum and analyze\n", o.Cars, time.Since(start).Round(time.Second))
	if err := owner.Vacuum(ctx); err != nil {
		return 0, err
	}
	return o.Cars, nil
}

// ensureDatabase makes database name on the server of url when it is
// absent and returns its URL.
func ensureDatabase(ctx context.Context, rawURL, name string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("database url: want postgres://user@host:port/database")
	}
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		return "", fmt.Errorf("database %s: %w", u.Redacted(), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", fmt.Errorf("database %s: %w", name, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", fmt.Errorf("create database %s: %w", name, err)
		}
	}
	u.Path = "/" + name
	return u.String(), nil
}

// traceBenchResult is one question's latencies at one history size.
type traceBenchResult struct {
	question string
	cars     int
	pass     int
	n        int
	p50, p99 time.Duration
	max      time.Duration
	rows     float64         // mean rows per answer
	ds       []time.Duration // the answers' times, sorted
}

// pooledBench returns, per question and size, the results of every pass
// pooled (pass 0): the p50 and p99 of all their answers together.
func pooledBench(rs []traceBenchResult) []traceBenchResult {
	type key struct {
		q    string
		cars int
	}
	var order []key
	pool := map[key]*traceBenchResult{}
	for _, r := range rs {
		k := key{r.question, r.cars}
		p, ok := pool[k]
		if !ok {
			p = &traceBenchResult{question: r.question, cars: r.cars}
			pool[k] = p
			order = append(order, k)
		}
		p.rows = (p.rows*float64(p.n) + r.rows*float64(r.n)) / float64(p.n+r.n)
		p.n += r.n
		p.ds = append(p.ds, r.ds...)
	}
	out := make([]traceBenchResult, 0, len(order))
	for _, k := range order {
		p := pool[k]
		slices.Sort(p.ds)
		p.p50, p.p99, p.max = percentile(p.ds, 50), percentile(p.ds, 99), p.ds[len(p.ds)-1]
		out = append(out, *p)
	}
	return out
}

// Trace benchmark goals at 100k cars (issue 5).
const (
	benchGoalVIN    = 20 * time.Millisecond
	benchGoalLot    = 100 * time.Millisecond
	benchGoalGrowth = 1.5
	// benchWindow is the tool question's window: one shift.
	benchWindow = 8 * time.Hour
	// benchWarmup is how many answers of each question are not measured.
	benchWarmup = 50
)

func runHistoryBench(ctx context.Context, args []string) error {
	fs := newFlags("history bench")
	state := fs.String("state", ".keiline-bench", "private PostgreSQL of this state dir holds the history databases")
	dbURL := fs.String("db", "", "PostgreSQL URL of an owner on a server to make the history databases on instead")
	sizes := fs.String("cars", "10000,100000", "history sizes in cars, comma-separated")
	queries := fs.Int("queries", 1000, "answers measured per question, size and pass")
	passes := fs.Int("passes", 2, "passes over the questions at each size, each with its own sample: the first meets the cache as it is, later ones a warmer one")
	seed := fs.Int64("seed", 1, "seed of the simulated plant and of the question sample")
	end := fs.String("end", "", "history ends before this day (RFC 3339 or 2006-01-02; default the first of this month, UTC)")
	markdown := fs.Bool("markdown", false, "print a Markdown table")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	// A month's runs share one history; a figure is reproduced with --end.
	endAt := schema.MonthStart(time.Now())
	if *end != "" {
		t, err := parseTime(*end)
		if err != nil {
			return fmt.Errorf("history bench: --end: %w", err)
		}
		endAt = t
	}
	var ns []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 100 {
			return fmt.Errorf("history bench: --cars %q: want sizes of 100 cars or more, comma-separated", *sizes)
		}
		ns = append(ns, n)
	}
	if err := os.MkdirAll(*state, 0o755); err != nil {
		return err
	}
	db, err := openDatabase(ctx, *dbURL, *state, toolLogger())
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	// Every size is loaded first; then the passes alternate the order of
	// the sizes (10k, 100k, then 100k, 10k, …), so a change of the shared
	// machine's load during the run weighs on both sizes alike.
	stores := make([]*schema.Store, len(ns))
	defer func() {
		for _, st := range stores {
			if st != nil {
				st.Close()
			}
		}
	}()
	for i, n := range ns {
		target, err := ensureDatabase(ctx, db.URL, fmt.Sprintf("history_%d", n))
		if err != nil {
			return err
		}
		start := time.Now()
		if _, err := loadHistory(ctx, target, genOptions{Cars: n, Seed: *seed, End: endAt}, os.Stderr); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "history bench: %d cars ready in %s\n", n, time.Since(start).Round(time.Second))
		if stores[i], err = schema.OpenAs(ctx, target, schema.RoleAuditor); err != nil {
			return err
		}
		size, err := stores[i].Size(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "history bench: %d cars: %s\n", n, size)
	}
	var all []traceBenchResult
	for pass := 1; pass <= *passes; pass++ {
		for j := range ns {
			i := j
			if pass%2 == 0 {
				i = len(ns) - 1 - j
			}
			rs, err := benchTrace(ctx, stores[i], ns[i], *queries, *seed+int64(pass))
			if err != nil {
				return err
			}
			for k := range rs {
				rs[k].pass = pass
			}
			all = append(all, rs...)
		}
	}
	slices.SortStableFunc(all, func(a, b traceBenchResult) int {
		return cmp.Or(cmp.Compare(a.cars, b.cars), cmp.Compare(a.pass, b.pass))
	})
	all = append(all, pooledBench(all)...)
	printTraceBench(os.Stdout, all, *markdown)
	return nil
}

// benchTrace measures the three questions on store's history of cars.
func benchTrace(ctx context.Context, store *schema.Store, cars, queries int, seed int64) ([]traceBenchResult, error) {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(cars)))
	var vins, lots, tools []string
	var from, to time.Time
	err := store.WithTx(ctx, func(tx *schema.Tx) error {
		var err error
		vins, lots, tools, from, to, err = tx.BenchSample(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("history bench: sample: %w", err)
	}
	if len(vins) == 0 || len(lots) == 0 || len(tools) == 0 {
		return nil, errors.New("history bench: the history is empty")
	}
	span := to.Add(-benchWindow).Sub(from)
	if span <= 0 {
		return nil, fmt.Errorf("history bench: the history spans %s, less than a shift's window of %s: generate more cars", to.Sub(from).Round(time.Minute), benchWindow)
	}
	questions := []struct {
		name string
		ask  func() (int, error)
	}{
		{"VIN → birth record", func() (int, error) {
			t, err := store.Trace(ctx, vins[r.IntN(len(vins))])
			if err != nil {
				return 0, err
			}
			b := t.Birth()
			n := len(b.Visits) + len(b.Holds) + len(b.Gate)
			for _, v := range b.Visits {
				n += len(v.Parts) + len(v.Joints) + len(v.Tests)
			}
			return n, nil
		}},
		{"lot → VINs", func() (int, error) {
			a, err := store.ByLot(ctx, schema.LotQuery{Lots: []string{lots[r.IntN(len(lots))]}})
			if err != nil {
				return 0, err
			}
			return len(a.Cars), nil
		}},
		{"tool + shift → joints", func() (int, error) {
			t1 := from.Add(time.Duration(r.Int64N(int64(span))))
			a, err := store.ByTool(ctx, schema.ToolQuery{Tool: tools[r.IntN(len(tools))], From: t1, To: t1.Add(benchWindow)})
			if err != nil {
				return 0, err
			}
			return len(a.Joints), nil
		}},
	}
	var out []traceBenchResult
	for _, q := range questions {
		ds := make([]time.Duration, 0, queries)
		rows := 0
		for i := range benchWarmup + queries {
			t0 := time.Now()
			n, err := q.ask()
			d := time.Since(t0)
			if err != nil {
				return nil, fmt.Errorf("history bench: %s: %w", q.name, err)
			}
			if i >= benchWarmup {
				ds = append(ds, d)
				rows += n
			}
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		out = append(out, traceBenchResult{question: q.name, cars: cars, n: len(ds), p50: percentile(ds, 50), p99: percentile(ds, 99),
			max: ds[len(ds)-1], rows: float64(rows) / float64(len(ds)), ds: ds})
	}
	return out, nil
}

// percentile returns the p-th percentile of sorted ds (nearest rank).
func percentile(ds []time.Duration, p int) time.Duration {
	k := (len(ds)*p + 99) / 100
	return ds[max(k-1, 0)]
}

func printTraceBench(w io.Writer, rs []traceBenchResult, markdown bool) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
	// Growth compares each size's pass with the same pass at the smallest
	// size; the pooled rows (pass "all") compare every pass together.
	smallest := map[string]traceBenchResult{}
	for _, r := range rs {
		k := fmt.Sprint(r.question, r.pass)
		if s, ok := smallest[k]; !ok || r.cars < s.cars {
			smallest[k] = r
		}
	}
	growth := func(r traceBenchResult) string {
		s := smallest[fmt.Sprint(r.question, r.pass)]
		if s.cars == r.cars {
			return "—"
		}
		return fmt.Sprintf("%.2f× p50, %.2f× p99", float64(r.p50)/float64(s.p50), float64(r.p99)/float64(s.p99))
	}
	if markdown {
		fmt.Fprintln(w, "| question | cars | pass | answers | rows/answer | p50 ms | p99 ms | max ms | growth vs smallest |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
		for _, r := range rs {
			fmt.Fprintf(w, "| %s | %d | %s | %d | %.0f | %s | %s | %s | %s |\n", r.question, r.cars, passName(r.pass), r.n, r.rows, ms(r.p50), ms(r.p99), ms(r.max), growth(r))
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUESTION\tCARS\tPASS\tANSWERS\tROWS/ANSWER\tP50 MS\tP99 MS\tMAX MS\tGROWTH")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\n", r.question, r.cars, passName(r.pass), r.n, r.rows, ms(r.p50), ms(r.p99), ms(r.max), growth(r))
	}
	tw.Flush()
}

// passName is a pass number, or "all" for the pooled results (0).
func passName(pass int) string {
	if pass == 0 {
		return "all"
	}
	return strconv.Itoa(pass)
}

// parseTime reads a time as every keiline tool takes it.
func parseTime(s string) (time.Time, error) { return traceweb.ParseTime(s) }
