package csvsafe_test

import (
	"encoding/csv"
	"strings"
	"testing"

	"github.com/keiline/keiline/internal/csvsafe"
)

func TestCell(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain text", "TYR-LOT-00201", "TYR-LOT-00201"},
		{"empty", "", ""},
		{"a formula", `=HYPERLINK("http://x","y")`, `'=HYPERLINK("http://x","y")`},
		{"plus", "+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"},
		{"minus formula", "-1+2", "'-1+2"},
		{"minus name", "-Inf", "'-Inf"},
		{"minus reference", "-A1", "'-A1"},
		{"at", "@SUM(A1:A2)", "'@SUM(A1:A2)"},
		{"tab", "\t=1", "'\t=1"},
		{"carriage return", "\r=1", "'\r=1"},
		{"negative integer", "-12", "-12"},
		{"negative decimal", "-12.5", "-12.5"},
		{"negative exponent", "-1e-06", "-1e-06"},
		{"minus alone", "-", "'-"},
		{"a formula inside", "lot =1", "lot =1"},
		{"already quoted", "'=1", "'=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := csvsafe.Cell(tt.in); got != tt.want {
				t.Errorf("Cell(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestWriterQuotesEveryCellAndKeepsTheRecord(t *testing.T) {
	var b strings.Builder
	w := csvsafe.NewWriter(&b)
	rec := []string{"=1+1", "-3.5", "a,b", "@x"}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	if err != nil || len(rows) != 1 || strings.Join(rows[0], "|") != "'=1+1|-3.5|a,b|'@x" {
		t.Errorf("rows %q (%v)", rows, err)
	}
	if rec[0] != "=1+1" {
		t.Errorf("Write changed its record: %q", rec)
	}
}

// FuzzCell: no cell Cell returns starts a formula, and stripping the one
// quote it adds gives the input back.
func FuzzCell(f *testing.F) {
	for _, s := range []string{"=1", "-2", "-2.5e3", "@a", "\t=1", "plain", "-", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := csvsafe.Cell(s)
		if got != s && got != "'"+s {
			t.Fatalf("Cell(%q) = %q: neither the input nor the input quoted", s, got)
		}
		if got != "" && strings.ContainsRune("=+@\t\r", rune(got[0])) {
			t.Fatalf("Cell(%q) = %q starts a formula", s, got)
		}
		if got != "" && got[0] == '-' && strings.ContainsAny(got, "=+@(!:|\"' ") {
			t.Fatalf("Cell(%q) = %q: a minus cell with formula characters left unquoted", s, got)
		}
	})
}
