package sequence

import (
	"context"
	"fmt"
	"testing"
)

// TestEngineDeltas checks every incremental evaluation against a full
// recount: after each applied move the running cost must equal fullCost,
// and the over-capacity list must hold exactly the over-capacity windows.
func TestEngineDeltas(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		colour bool
		batch  int
		rank   bool
	}{
		{name: "ratio only", n: 40},
		{name: "short sequence", n: 4},
		{name: "colours", n: 50, colour: true},
		{name: "colour batches", n: 50, colour: true, batch: 3},
		{name: "everything", n: 60, colour: true, batch: 2, rank: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRNG(7)
			ps := []int{1, 2, 1, 2, 1, 3}
			qs := []int{2, 3, 3, 5, 5, 7}
			masks := make([]uint64, tc.n)
			var colour, rank []int32
			if tc.colour {
				colour = make([]int32, tc.n)
			}
			if tc.rank {
				rank = make([]int32, tc.n)
			}
			for i := range masks {
				masks[i] = r.next() & r.next() & 63
				if colour != nil {
					colour[i] = int32(r.intn(3))
				}
				if rank != nil {
					rank[i] = int32(r.intn(tc.n))
				}
			}
			e := newEngine(masks, ps, qs, colour, tc.batch, rank, 1)
			e.setTemp(2) // accept worse moves too, to exercise more states
			cars := make([]int32, tc.n)
			for i := range cars {
				cars[i] = int32(i)
			}
			e.load(cars)
			var m move
			for i := 0; i < 20000; i++ {
				e.pick(&m)
				dW, dE := e.ratioDelta(&m)
				dB, dC, dR := e.secDelta(&m)
				e.apply(&m)
				e.cur.W += dW
				e.cur.E += dE
				e.cur.Batch += dB
				e.cur.Changes += dC
				e.cur.RankDev += dR
				if want := e.fullCost(); e.cur != want {
					t.Fatalf("move %d %+v: running cost %+v, recount %+v", i, m, e.cur, want)
				}
				if err := e.checkViol(); err != nil {
					t.Fatalf("move %d %+v: %v", i, m, err)
				}
			}
		})
	}
}

// checkViol compares the over-capacity list with the window loads.
func (e *engine) checkViol() error {
	n := 0
	for r := range e.rules {
		rs := &e.rules[r]
		for s, l := range rs.load {
			over := int(l) > rs.p
			if over {
				n++
				if rs.at[s] < 0 || e.viol[rs.at[s]] != (vwin{int32(r), int32(s)}) {
					return fmt.Errorf("rule %d window %d over capacity but not listed", r, s)
				}
			} else if rs.at[s] >= 0 {
				return fmt.Errorf("rule %d window %d listed but within capacity", r, s)
			}
		}
	}
	if n != len(e.viol) {
		return fmt.Errorf("%d windows over capacity, %d listed", n, len(e.viol))
	}
	return nil
}

// TestSearchDeterministic checks that a seed and a move budget give one
// answer, and that another seed may give another path.
func TestSearchDeterministic(t *testing.T) {
	p := mustParseFile(t, "testdata/p04.txt")
	cfg := Config{Seed: 3, MaxMoves: 200000}
	a, err := Solve(context.Background(), p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Solve(context.Background(), p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a.Sequence) != fmt.Sprint(b.Sequence) || a.Moves != b.Moves {
		t.Fatalf("same seed, different results:\n%v (%d moves)\n%v (%d moves)", a.Sequence, a.Moves, b.Sequence, b.Moves)
	}
}
