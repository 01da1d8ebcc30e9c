package spc_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/spc"
)

// readNumbers reads the numbers of a testdata file, row by row, skipping
// comment lines.
func readNumbers(t testing.TB, name string) [][]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var row []float64
		for _, field := range strings.Fields(line) {
			v, err := strconv.ParseFloat(field, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", name, field, err)
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// readValues reads every number of a testdata file in order.
func readValues(t testing.TB, name string) []float64 {
	var out []float64
	for _, row := range readNumbers(t, name) {
		out = append(out, row...)
	}
	return out
}

// asPoints makes points with identities "P1", "P2", … one minute apart,
// ending now.
func asPoints(values []float64) []spc.Point {
	now := time.Now()
	out := make([]spc.Point, len(values))
	for i, v := range values {
		out[i] = spc.Point{Value: v, ID: "P" + strconv.Itoa(i+1), Time: now.Add(time.Duration(i-len(values)) * time.Minute)}
	}
	return out
}

// published asserts that got, rounded to as many decimals as the published
// figure want has, equals it.
func published(t *testing.T, name string, got float64, want string) {
	t.Helper()
	dec := 0
	if i := strings.IndexByte(want, '.'); i >= 0 {
		dec = len(want) - i - 1
	}
	if s := strconv.FormatFloat(got, 'f', dec, 64); s != want {
		t.Errorf("%s = %s (%.10g); published %s", name, s, got, want)
	}
}
