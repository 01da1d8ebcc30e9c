package sequence

import (
	"context"
	"errors"
	"testing"
	"time"
)

// ratios is the option set of every CSPLib instance.
var ratios = []Option{{"0", 1, 2}, {"1", 2, 3}, {"2", 1, 3}, {"3", 2, 5}, {"4", 1, 5}}

func TestViolations(t *testing.T) {
	// Class 1 needs option a (1/2), class 2 option b (2/3), class 3 both.
	p := &Problem{
		Options: []Option{{"a", 1, 2}, {"b", 2, 3}},
		Classes: []Class{
			{ID: 0, Count: 3, Options: []bool{false, false}},
			{ID: 1, Count: 3, Options: []bool{true, false}},
			{ID: 2, Count: 3, Options: []bool{false, true}},
			{ID: 3, Count: 3, Options: []bool{true, true}},
		},
	}
	for _, tc := range []struct {
		name string
		seq  []int
		w, e int
	}{
		{"empty", nil, 0, 0},
		{"one car", []int{3}, 0, 0},
		{"alternating a is fine", []int{1, 0, 1, 0, 1}, 0, 0},
		{"two a in a row: one window", []int{1, 1}, 1, 1},
		{"three a in a row: two windows", []int{1, 1, 1}, 2, 2},
		// b windows of 3: [2 2 2] has load 3 > 2, excess 1.
		{"three b in a row", []int{2, 2, 2}, 1, 1},
		// a: windows (3,3) (3,3) (3,0) → 2 over, excess 2.
		// b: windows [3 3 3]=3 over by 1, [3 3 0]=2 ok → 1, excess 1.
		{"both options", []int{3, 3, 3, 0}, 3, 3},
		// b: [2 3 2] and [3 2 3] hold 3 each → 2 windows, excess 2;
		// a alternates, which 1/2 allows.
		{"b every car", []int{2, 3, 2, 3}, 2, 2},
		// a alternates; b windows hold 1, 1, 2, 2.
		{"feasible mix", []int{3, 0, 1, 2, 3, 0}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, e := Violations(p, tc.seq)
			if w != tc.w || e != tc.e {
				t.Fatalf("Violations(%v) = W %d, E %d; want %d, %d", tc.seq, w, e, tc.w, tc.e)
			}
		})
	}
	t.Run("excess counts cars over capacity", func(t *testing.T) {
		q := &Problem{Options: []Option{{"x", 1, 3}}, Classes: []Class{{ID: 5, Count: 4, Options: []bool{true}}}}
		// Windows [5 5 5] and [5 5 5]: load 3 over 1 → W 2, E 4.
		if w, e := Violations(q, []int{5, 5, 5, 5}); w != 2 || e != 4 {
			t.Fatalf("W %d, E %d; want 2, 4", w, e)
		}
	})
	t.Run("window longer than the sequence", func(t *testing.T) {
		q := &Problem{Options: []Option{{"x", 1, 5}}, Classes: []Class{{ID: 0, Count: 3, Options: []bool{true}}}}
		if w, e := Violations(q, []int{0, 0, 0}); w != 0 || e != 0 {
			t.Fatalf("W %d, E %d; want 0, 0: no full window", w, e)
		}
	})
}

func TestCheckSequence(t *testing.T) {
	p := &Problem{Options: ratios[:1], Classes: []Class{{ID: 4, Count: 2, Options: []bool{true}}, {ID: 9, Count: 1, Options: []bool{false}}}}
	for _, tc := range []struct {
		name string
		seq  []int
		ok   bool
	}{
		{"exact", []int{4, 9, 4}, true},
		{"unknown class", []int{4, 9, 3}, false},
		{"too many of one", []int{4, 4, 4}, false},
		{"too few", []int{4, 9}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSequence(p, tc.seq)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("CheckSequence(%v) = %v, want ok=%v", tc.seq, err, tc.ok)
			}
		})
	}
}

// TestSolveCSPLib solves the copied instances. The time limit is generous so
// that a slow machine only takes longer; the assertions are on results.
func TestSolveCSPLib(t *testing.T) {
	for _, tc := range []struct {
		file string
		best int // best known W (../shared/csplib/README.md)
		// slack is how far above best known the test accepts.
		slack int
	}{
		{"testdata/p00.txt", 0, 0}, // 4/72, Régin & Puget #1
		{"testdata/p03.txt", 0, 0}, // 16/81
		{"testdata/p04.txt", 2, 1}, // 19/71: 2 is optimal (Gent 1998)
		{"testdata/p09.txt", 0, 0}, // 60-01
		{"testdata/p10.txt", 0, 0}, // 60-02
	} {
		t.Run(tc.file, func(t *testing.T) {
			p := mustParseFile(t, tc.file)
			// A move budget, not the clock, bounds the search: the result
			// is the same on any machine.
			res, err := Solve(context.Background(), p, Config{TimeLimit: time.Hour, MaxMoves: 50_000_000, Seed: 1, Target: tc.best})
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckSequence(p, res.Sequence); err != nil {
				t.Fatal(err)
			}
			w, e := Violations(p, res.Sequence)
			if w != res.Violations || e != res.Excess {
				t.Fatalf("result says W %d E %d, the sequence has W %d E %d", res.Violations, res.Excess, w, e)
			}
			if w > tc.best+tc.slack {
				t.Fatalf("W %d, best known %d", w, tc.best)
			}
			t.Logf("W %d (greedy %d) in %v, %d moves", w, res.Greedy, res.Elapsed, res.Moves)
		})
	}
}

func TestSolveEdges(t *testing.T) {
	ctx := context.Background()
	t.Run("no cars", func(t *testing.T) {
		res, err := Solve(ctx, &Problem{Options: ratios}, Config{})
		if err != nil || len(res.Sequence) != 0 || res.Violations != 0 {
			t.Fatalf("got %+v, %v", res, err)
		}
	})
	t.Run("one class", func(t *testing.T) {
		// 1/2 with every car needing it: every one of the 5 windows is over.
		p := &Problem{Options: ratios[:1], Classes: []Class{{ID: 7, Count: 6, Options: []bool{true}}}}
		res, err := Solve(ctx, p, Config{MaxMoves: 1000})
		if err != nil || res.Violations != 5 || len(res.Sequence) != 6 {
			t.Fatalf("got %+v, %v", res, err)
		}
	})
	t.Run("invalid problem", func(t *testing.T) {
		p := &Problem{Options: []Option{{"x", 1, 0}}}
		if _, err := Solve(ctx, p, Config{}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v, want ErrInvalid", err)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		if _, err := Solve(ctx, &Problem{}, Config{TimeLimit: -time.Second}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v, want ErrInvalid", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		p := mustParseFile(t, "testdata/p04.txt")
		res, err := Solve(ctx, p, Config{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if CheckSequence(p, res.Sequence) != nil {
			t.Fatal("a cancelled solve must still return a whole sequence")
		}
	})
	t.Run("deadline is a normal end", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		p := mustParseFile(t, "testdata/p04.txt")
		if _, err := Solve(ctx, p, Config{}); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkMoves measures local-search moves per second on p04
// (infeasible, so the search never stops early).
func BenchmarkMoves(b *testing.B) {
	p := mustParseFile(b, "testdata/p04.txt")
	var moves int64
	start := time.Now()
	for b.Loop() {
		res, err := Solve(context.Background(), p, Config{MaxMoves: 1_000_000, Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		moves += res.Moves
	}
	b.ReportMetric(float64(moves)/time.Since(start).Seconds(), "moves/s")
}
