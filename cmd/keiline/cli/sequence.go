package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/keiline/keiline/pipeline/sequence"
)

// csplibBest is the best known W (violated windows) of each CSPLib prob001
// instance, by file name without ".txt", as tabled in
// ../shared/csplib/README.md (p09..p78 are all feasible: 0). The pb_400_01
// and pb_400_02 files were rebuilt (see that README).
var csplibBest = func() map[string]int {
	m := map[string]int{
		"p00": 0, "p01": 6, "p02": 3, "p03": 0, "p04": 2, "p05": 2, "p06": 2, "p07": 0, "p08": 0,
	}
	pb := map[int][10]int{
		200: {0, 2, 3, 7, 6, 6, 0, 8, 10, 19},
		300: {0, 12, 13, 7, 27, 2, 0, 8, 7, 21},
		400: {1, 15, 9, 19, 0, 0, 4, 4, 5, 0},
	}
	for size, best := range pb {
		for i, b := range best {
			m[fmt.Sprintf("pb_%d_%02d", size, i+1)] = b
		}
	}
	for i := 9; i <= 78; i++ {
		m[fmt.Sprintf("p%02d", i)] = 0
	}
	return m
}()

// dirList is a repeatable flag.
type dirList []string

func (d *dirList) String() string     { return strings.Join(*d, ",") }
func (d *dirList) Set(s string) error { *d = append(*d, s); return nil }

func runSequence(ctx context.Context, args []string) error {
	fs := newFlags("sequence")
	file := fs.String("csplib", "", "solve this CSPLib prob001 instance `file`")
	var dirs dirList
	fs.Var(&dirs, "csplib-dir", "benchmark every *.txt instance in this `dir` (repeatable)")
	limit := fs.Duration("time-limit", sequence.TimeLimitDefault, "search time per instance")
	seed := fs.Uint64("seed", 1, "random seed (same seed, same moves)")
	asJSON := fs.Bool("json", false, "JSON for machines (one line per instance with --csplib-dir)")
	markdown := fs.Bool("markdown", false, "with --csplib-dir: print a Markdown table")
	stopAtBest := fs.Bool("stop-at-best", false, "with --csplib-dir: stop each instance at its best known value")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("sequence: unexpected argument %q", pos[0])
	}
	if *limit <= 0 {
		return fmt.Errorf("sequence: --time-limit %v must be positive", *limit)
	}
	cfg := sequence.Config{TimeLimit: *limit, Seed: *seed}
	switch {
	case *file != "" && len(dirs) == 0:
		return sequenceOne(ctx, *file, cfg, *asJSON)
	case *file == "" && len(dirs) > 0:
		return sequenceBench(ctx, dirs, cfg, *asJSON, *markdown, *stopAtBest)
	}
	return errors.New("sequence: give --csplib FILE or --csplib-dir DIR")
}

// readCSPLib parses one instance; errors name the file and line.
func readCSPLib(path string) (*sequence.Problem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := sequence.ParseCSPLib(f)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	return p, nil
}

// sequenceJSON is the --json output of one instance.
type sequenceJSON struct {
	Sequence   []int   `json:"sequence"`
	Violations int     `json:"violations"`
	Excess     int     `json:"excess"`
	Seconds    float64 `json:"seconds"`
}

// benchJSON is a --json line of --csplib-dir.
type benchJSON struct {
	Instance   string  `json:"instance"`
	Violations int     `json:"violations"`
	Excess     int     `json:"excess"`
	BestKnown  *int    `json:"best_known"`
	Seconds    float64 `json:"seconds"`
	BestAt     float64 `json:"best_found_at_seconds"`
}

func sequenceOne(ctx context.Context, path string, cfg sequence.Config, asJSON bool) error {
	p, err := readCSPLib(path)
	if err != nil {
		return err
	}
	res, err := sequence.Solve(ctx, p, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(sequenceJSON{
			Sequence: res.Sequence, Violations: res.Violations, Excess: res.Excess,
			Seconds: res.Elapsed.Seconds(),
		})
	}
	fmt.Printf("instance:   %s (%d cars, %d options, %d classes)\n", path, p.Cars(), len(p.Options), len(p.Classes))
	fmt.Printf("violations: %d (windows over capacity; excess %d; greedy start %d)\n", res.Violations, res.Excess, res.Greedy)
	fmt.Printf("seconds:    %.3f (%d moves)\n", res.Elapsed.Seconds(), res.Moves)
	fmt.Print("sequence:  ")
	for _, id := range res.Sequence {
		fmt.Printf(" %d", id)
	}
	fmt.Println()
	return nil
}

type benchRow struct {
	name    string
	cars    int
	res     sequence.Result
	best    int
	hasBest bool
}

func sequenceBench(ctx context.Context, dirs []string, cfg sequence.Config, asJSON, markdown, stopAtBest bool) error {
	var files []string
	for _, d := range dirs {
		m, err := filepath.Glob(filepath.Join(d, "*.txt"))
		if err != nil {
			return err
		}
		if len(m) == 0 {
			return fmt.Errorf("sequence: no *.txt instances in %s", d)
		}
		sort.Strings(m)
		files = append(files, m...)
	}
	var rows []benchRow
	enc := json.NewEncoder(os.Stdout)
	for _, path := range files {
		p, err := readCSPLib(path)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(filepath.Base(path), ".txt")
		best, ok := csplibBest[name]
		icfg := cfg
		if ok && stopAtBest {
			icfg.Target = best
		}
		res, err := sequence.Solve(ctx, p, icfg)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		row := benchRow{name: filepath.Join(filepath.Base(filepath.Dir(path)), name), cars: p.Cars(), res: res, best: best, hasBest: ok}
		rows = append(rows, row)
		if asJSON {
			j := benchJSON{Instance: row.name, Violations: res.Violations, Excess: res.Excess,
				Seconds: res.Elapsed.Seconds(), BestAt: res.BestAt.Seconds()}
			if ok {
				j.BestKnown = &best
			}
			if err := enc.Encode(j); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(os.Stderr, "%s\t%d\t%s\t%.2fs\t%.2fs\n", row.name, res.Violations, bestText(row), res.Elapsed.Seconds(), res.BestAt.Seconds())
		}
	}
	if asJSON {
		return nil
	}
	printBench(os.Stdout, rows, cfg, markdown)
	return nil
}

func bestText(r benchRow) string {
	if !r.hasBest {
		return "?"
	}
	return fmt.Sprint(r.best)
}

// printBench prints the per-instance table and the totals.
func printBench(w io.Writer, rows []benchRow, cfg sequence.Config, markdown bool) {
	var feasible, solved, known, atBest, better, gapSum int
	var secs float64
	for _, r := range rows {
		secs += r.res.Elapsed.Seconds()
		if !r.hasBest {
			continue
		}
		known++
		v := r.res.Violations
		if r.best == 0 {
			feasible++
			if v == 0 {
				solved++
			}
		}
		switch {
		case v == r.best:
			atBest++
		case v < r.best:
			better++
		default:
			gapSum += v - r.best
		}
	}
	if markdown {
		fmt.Fprintln(w, "| instance | cars | violations (W) | excess (E) | best known | seconds | best found at (s) | moves (M) |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
		for _, r := range rows {
			mark := ""
			if r.hasBest && r.res.Violations > r.best {
				mark = fmt.Sprintf(" (+%d)", r.res.Violations-r.best)
			}
			fmt.Fprintf(w, "| %s | %d | %d%s | %d | %s | %.2f | %.2f | %.1f |\n", r.name, r.cars, r.res.Violations, mark, r.res.Excess, bestText(r),
				r.res.Elapsed.Seconds(), r.res.BestAt.Seconds(), float64(r.res.Moves)/1e6)
		}
		fmt.Fprintln(w)
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "instance\tcars\tviolations (W)\texcess (E)\tbest known\tseconds\tbest found at (s)\tmoves (M)\t")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%.2f\t%.2f\t%.1f\t\n", r.name, r.cars, r.res.Violations, r.res.Excess, bestText(r),
				r.res.Elapsed.Seconds(), r.res.BestAt.Seconds(), float64(r.res.Moves)/1e6)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "instances: %d (time limit %v each, seed %d); total %.1f s\n", len(rows), cfg.TimeLimit, cfg.Seed, secs)
	// The machines are shared: a loaded one tries fewer moves.
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			fmt.Fprintf(w, "load average at the end (1, 5, 15 min): %s\n", strings.Join(f[:3], " "))
		}
	}
	fmt.Fprintf(w, "feasible instances solved (0 violations): %d of %d\n", solved, feasible)
	fmt.Fprintf(w, "at best known: %d of %d; below best known: %d; total excess over best known: %d\n", atBest, known, better, gapSum)
}
