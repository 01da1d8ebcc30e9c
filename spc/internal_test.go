package spc

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// SAS/QC: X̄-S limits (Turblim) from the published subgroup summaries of the
// turbine data (Oilsum, 20 subgroups of 20), exact factors. The raw data are
// not all published, so the test enters at the subgroup statistics, the same
// code path ComputeLimits takes after summarizing.
func TestXbarSLimitsSASOilsum(t *testing.T) {
	f, err := os.Open("testdata/sas_oilsum.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sg []subgroup
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		mean, _ := strconv.ParseFloat(fields[0], 64)
		sd, _ := strconv.ParseFloat(fields[1], 64)
		sg = append(sg, subgroup{mean: mean, sd: sd})
	}
	if len(sg) != 20 {
		t.Fatalf("read %d subgroups; want 20", len(sg))
	}
	fac, err := FactorsFor(20, FactorsExact)
	if err != nil {
		t.Fatal(err)
	}
	l, err := subgroupLimits(sg, MethodXbarS, fac)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  float64
		want string
	}{
		{"X̿", l.Location.Centre, "3485.41"},
		{"X̄ LCL", l.Location.LCL, "3351.92"},
		{"X̄ UCL", l.Location.UCL, "3618.90"},
		{"S̄", l.Dispersion.Centre, "196.396"},
		{"S LCL", l.Dispersion.LCL, "100.207"},
		{"S UCL", l.Dispersion.UCL, "292.584"},
		{"σ", l.Sigma, "198.996"},
	} {
		dec := len(c.want) - strings.IndexByte(c.want, '.') - 1
		if s := strconv.FormatFloat(c.got, 'f', dec, 64); s != c.want {
			t.Errorf("%s = %s; published %s", c.name, s, c.want)
		}
	}
}

// Minitab Help, Graphical Summary: the precipitation data, n = 11, A-squared
// 0.99, p-value 0.008 (only the statistic is published, not the data). This
// checks the last branch of the p-value formula.
func TestAndersonDarlingPValueMinitab(t *testing.T) {
	n := 11.0
	p := adPValue(0.99 * (1 + 0.75/n + 2.25/(n*n)))
	if s := strconv.FormatFloat(p, 'f', 3, 64); s != "0.008" {
		t.Errorf("p = %s (%v); published 0.008", s, p)
	}
}

// The p-value falls as the statistic grows, is continuous at the branch
// points of the formula (to the table's precision), and stays a probability
// for any statistic.
func TestAndersonDarlingPValueShape(t *testing.T) {
	prev := 1.0
	for a := 0.0; a < 200; a += 0.01 {
		p := adPValue(a)
		if !(p >= 0 && p <= 1) {
			t.Fatalf("p(%v) = %v; want a probability", a, p)
		}
		if p > prev+0.003 {
			t.Fatalf("p(%v) = %v rises from %v", a, p, prev)
		}
		prev = p
	}
}
