package spc_test

import (
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/keiline/keiline/spc"
)

// The exact factors agree with the published table: d2 and c4 round to the
// table's figures; d3 (rounded in the table from a 4-digit value: 0.7335 for
// n = 19 became 0.734) and the derived factors, which the table computed from
// rounded constants, lie within one unit of its last digit.
func TestExactFactorsMatchPublishedTable(t *testing.T) {
	for n := 2; n <= spc.SubgroupMax; n++ {
		tab, err := spc.FactorsFor(n, spc.FactorsTabulated)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := spc.FactorsFor(n, spc.FactorsExact)
		if err != nil {
			t.Fatal(err)
		}
		name := "n=" + strconv.Itoa(n)
		published(t, name+" d2", ex.D2, strconv.FormatFloat(tab.D2, 'f', 3, 64))
		published(t, name+" c4", ex.C4, strconv.FormatFloat(tab.C4, 'f', 4, 64))
		for _, f := range []struct {
			name     string
			got, tab float64
		}{{"d3", ex.RangeSD, tab.RangeSD}, {"A2", ex.A2, tab.A2}, {"A3", ex.A3, tab.A3}, {"D3", ex.D3, tab.D3}, {"D4", ex.D4, tab.D4}, {"B3", ex.B3, tab.B3}, {"B4", ex.B4, tab.B4}} {
			if math.Abs(f.got-f.tab) > 0.0015 {
				t.Errorf("%s %s: exact %.5f, table %.3f", name, f.name, f.got, f.tab)
			}
		}
	}
}

// The factors of n = 2 have closed forms: the range of two standard normals
// is √2 times a half-normal.
func TestExactFactorsClosedFormsN2(t *testing.T) {
	f, err := spc.FactorsFor(2, spc.FactorsExact)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"d2", f.D2, 2 / math.Sqrt(math.Pi)},
		{"d3", f.RangeSD, math.Sqrt(2 - 4/math.Pi)},
		{"c4", f.C4, math.Sqrt(2 / math.Pi)},
	} {
		if math.Abs(c.got-c.want) > 1e-10 {
			t.Errorf("%s = %.12f; want %.12f", c.name, c.got, c.want)
		}
	}
}

func TestFactorsForRejectsBadSizeAndSource(t *testing.T) {
	for _, n := range []int{-1, 0, 1, 26} {
		if _, err := spc.FactorsFor(n, spc.FactorsTabulated); !errors.Is(err, spc.ErrConfig) {
			t.Errorf("FactorsFor(%d) error = %v; want ErrConfig", n, err)
		}
	}
	if _, err := spc.FactorsFor(5, spc.FactorSource(7)); !errors.Is(err, spc.ErrConfig) {
		t.Errorf("unknown source error = %v; want ErrConfig", err)
	}
}
