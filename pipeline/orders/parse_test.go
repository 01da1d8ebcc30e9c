package orders

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/sequence"
)

// testProducts is a small kei line: a petrol model with 2WD, 4WD and turbo
// variants, an EV model, six colours and two free options.
func testProducts() *line.Products {
	return &line.Products{
		WMI: "7KL", ModelYear: 2027, PlantCode: "U",
		Models: []line.Model{
			{Code: "KV", Body: "1", Variants: []line.Variant{
				{Name: "2WD", Code: "TA"},
				{Name: "4WD", Code: "TB", Options: []string{"4WD"}},
				{Name: "Turbo", Code: "TC", Options: []string{"TURBO"}},
			}},
			{Code: "KE", Body: "2", Options: []string{"EV"}, Variants: []line.Variant{{Name: "Std", Code: "EA"}}},
		},
		Colours: []string{"white", "black", "red", "mint", "silver", "blue"},
		Options: []string{"SUNROOF", "NAVI"},
	}
}

// day1 is the first due day of the fixture orders, derived from the
// clock (the tests use no fixed calendar date): midnight UTC the day after
// tomorrow.
var day1 = time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 2)

// day is h hours into the d-th day after day1 (d may be negative).
func day(d, h int) time.Time { return day1.AddDate(0, 0, d).Add(time.Duration(h) * time.Hour) }

// dayOrders are the orders of testdata/day.csv and day.json.
var dayOrders = []sequence.Order{
	{ID: "D-001", Model: "KV", Variant: "2WD", Colour: "white", Options: []string{}, Due: day(0, 0)},
	{ID: "D-002", Model: "KV", Variant: "4WD", Colour: "red", Options: []string{"4WD", "SUNROOF"}, Due: day(-1, 21), Priority: 2},
	{ID: "D-003", Model: "KE", Variant: "Std", Colour: "mint", Options: []string{"EV", "NAVI", "SUNROOF"}},
	{ID: "D-004", Model: "KV", Variant: "Turbo", Colour: "black", Options: []string{"4WD", "SUNROOF", "TURBO"}, Due: day(1, 0), Priority: -1},
}

// dayFile reads testdata/name with its due days filled in: {DAY1} is
// day1's date, {DAY2} the next day's (the file's D-002 is due at 06:00
// +09:00 on day1, 21:00 UTC the day before).
func dayFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return []byte(strings.NewReplacer("{DAY1}", day(0, 0).Format(DateLayout), "{DAY2}", day(1, 0).Format(DateLayout)).Replace(string(b)))
}

func sameOrders(t *testing.T, got, want []sequence.Order) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d orders, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Model != w.Model || g.Variant != w.Variant || g.Colour != w.Colour ||
			!slices.Equal(g.Options, w.Options) || !g.Due.Equal(w.Due) || g.Priority != w.Priority {
			t.Errorf("order %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestParseGoodFiles(t *testing.T) {
	for _, file := range []string{"day.csv", "day.json"} {
		t.Run(file, func(t *testing.T) {
			b := dayFile(t, file)
			got, err := Parse(file, bytes.NewReader(b), testProducts())
			if err != nil {
				t.Fatal(err)
			}
			sameOrders(t, got, dayOrders)
			// Without the extension the format is sniffed.
			got, err = Parse("orders", bytes.NewReader(b), testProducts())
			if err != nil {
				t.Fatalf("sniffed: %v", err)
			}
			sameOrders(t, got, dayOrders)
		})
	}
}

func TestParseCSVColumnsInAnyOrderAndCase(t *testing.T) {
	in := "\uFEFFCOLOUR, Variant ,order_id,model\r\nmint,Std,E-1,KE\r\n\r\nwhite,2WD,E-2,KV\r\n"
	got, err := Parse("x.csv", strings.NewReader(in), testProducts())
	if err != nil {
		t.Fatal(err)
	}
	sameOrders(t, got, []sequence.Order{
		{ID: "E-1", Model: "KE", Variant: "Std", Colour: "mint", Options: []string{"EV"}},
		{ID: "E-2", Model: "KV", Variant: "2WD", Colour: "white", Options: []string{}},
	})
}

// TestParseBadRows: each kind of bad row is named with its line and order,
// and the whole file is rejected even though its other rows are good.
func TestParseBadRows(t *testing.T) {
	const header = "order_id,model,variant,colour,options,due,priority\n"
	const good = "G-1,KV,2WD,white,,,\n"
	tests := []struct {
		name string
		row  string // line 3 of the file, after the header and a good row
		want Problem
	}{
		{"no order id", ",KV,2WD,white,,,", Problem{3, "", "no order id"}},
		{"space in the order id", `"G 2",KV,2WD,white,,,`, Problem{3, "G 2", `order id "G 2" has white space or a comma`}},
		{"comma in the order id", `"G,2",KV,2WD,white,,,`, Problem{3, "G,2", `order id "G,2" has white space or a comma`}},
		{"order id too long", strings.Repeat("x", 65) + ",KV,2WD,white,,,", Problem{3, strings.Repeat("x", 65), "order id is 65 bytes long, at most 64"}},
		{"duplicate order id", "G-1,KV,4WD,red,,,", Problem{3, "G-1", "order id used again (first on line 2)"}},
		{"unknown model", "G-2,KX,2WD,white,,,", Problem{3, "G-2", `model "KX" is not one of the line's; allowed: KV, KE`}},
		{"no model", "G-2,,2WD,white,,,", Problem{3, "G-2", "no model; allowed: KV, KE"}},
		{"unknown variant", "G-2,KE,4WD,white,,,", Problem{3, "G-2", `variant "4WD" of model KE; allowed: Std`}},
		{"no variant", "G-2,KV,,white,,,", Problem{3, "G-2", "no variant of model KV; allowed: 2WD, 4WD, Turbo"}},
		{"unknown colour", "G-2,KV,2WD,pink,,,", Problem{3, "G-2", `colour "pink" is not one of the line's; allowed: white, black, red, mint, silver, blue`}},
		{"no colour", "G-2,KV,2WD,,,,", Problem{3, "G-2", "no colour; allowed: white, black, red, mint, silver, blue"}},
		{"unknown option", "G-2,KV,2WD,white,SUNROOF;HOVER,,", Problem{3, "G-2", `option "HOVER" is not one of the line's; allowed: 4WD, EV, NAVI, SUNROOF, TURBO`}},
		{"bad due", "G-2,KV,2WD,white,," + day(0, 0).Format("02.01.2006") + ",", Problem{3, "G-2", `due "` + day(0, 0).Format("02.01.2006") + `" is neither RFC 3339 (2026-11-27T06:00:00+09:00) nor a date (2026-11-27)`}},
		{"bad priority", "G-2,KV,2WD,white,,,high", Problem{3, "G-2", `priority "high" is not an integer`}},
		{"fractional priority", "G-2,KV,2WD,white,,,1.5", Problem{3, "G-2", `priority "1.5" is not an integer`}},
		{"too many fields", "G-2,KV,2WD,white,,,,extra", Problem{3, "G-2", "8 fields, but the header has 7 columns"}},
		{"bare quote", `G-2,KV,2"WD,white,,,`, Problem{3, "", `CSV: bare " in non-quoted-field (column 9)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := header + good + tc.row + "\nG-9,KE,Std,mint,,,\n"
			got, err := Parse("day.csv", strings.NewReader(in), testProducts())
			if got != nil {
				t.Errorf("orders returned with a bad row: %+v", got)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if len(pe.Problems) != 1 || pe.Problems[0] != tc.want {
				t.Errorf("problems %+v\nwant [%+v]", pe.Problems, tc.want)
			}
		})
	}
}

func TestParseBadJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Problem
	}{
		{"unknown key", `[
  {"order_id": "J-1", "model": "KV", "variant": "2WD", "colour": "white"},
  {"order_id": "J-2", "model": "KV", "variant": "2WD",
   "color": "white"}
]`, []Problem{{3, "J-2", `unknown field "color"; allowed: order_id, model, variant, colour, options, due, priority`}}},
		{"options not an array", `[{"order_id": "J-1", "model": "KV", "variant": "2WD", "colour": "white", "options": "SUNROOF"}]`,
			[]Problem{{1, "J-1", "options: want an array of option codes (strings), not a JSON string"}}},
		{"priority not an integer", "[\n\n {\"order_id\": \"J-1\", \"model\": \"KV\", \"variant\": \"2WD\", \"colour\": \"white\", \"priority\": 2.5}]",
			[]Problem{{3, "J-1", `priority "2.5" is not an integer`}}},
		{"model a number", `[{"order_id": "J-1", "model": 7, "variant": "2WD", "colour": "white"}]`,
			[]Problem{{1, "J-1", "model: want a string, not a JSON number"}}},
		{"not an object", "[\n  {\"order_id\": \"J-1\", \"model\": \"KV\", \"variant\": \"2WD\", \"colour\": \"white\"},\n  \"J-2\"\n]",
			[]Problem{{3, "", `want an order object {"order_id": ...}, not "J-2"`}}},
		{"several bad orders", `[
  {"order_id": "J-1", "model": "KV", "variant": "2WD", "colour": "pink"},
  {"order_id": "J-2", "model": "KV", "variant": "2WD", "colour": "white"},
  {"order_id": "J-1", "model": "KE", "variant": "Std", "colour": "white", "due": "tomorrow"}
]`, []Problem{
			{2, "J-1", `colour "pink" is not one of the line's; allowed: white, black, red, mint, silver, blue`},
			{4, "J-1", "order id used again (first on line 2)"},
			{4, "J-1", `due "tomorrow" is neither RFC 3339 (2026-11-27T06:00:00+09:00) nor a date (2026-11-27)`},
		}},
		{"syntax error", "[\n  {\"order_id\": \"J-1\", \"model\": \"KV\",, \"variant\": \"2WD\", \"colour\": \"white\"}\n]",
			[]Problem{{2, "", "JSON: invalid character ',' looking for beginning of object key string"}}},
		{"cut short", "[\n  {\"order_id\": \"J-1\", \"model\": \"KV\"",
			[]Problem{{2, "", "JSON: unexpected end of the file"}}},
		{"an object, not an array", `{"order_id": "J-1"}`, []Problem{{1, "", `JSON: want an array of orders, [{"order_id": ...}, ...]`}}},
		{"empty array", `[]`, []Problem{{0, "", "no orders in the file"}}},
		{"more after the array", "[{\"order_id\": \"J-1\", \"model\": \"KV\", \"variant\": \"2WD\", \"colour\": \"white\"}]\n[]", []Problem{{2, "", "JSON: more after the array of orders"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("day.json", strings.NewReader(tc.in), testProducts())
			if got != nil {
				t.Errorf("orders returned: %+v", got)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if !reflect.DeepEqual(pe.Problems, tc.want) {
				t.Errorf("problems %+v\nwant %+v", pe.Problems, tc.want)
			}
		})
	}
}

func TestParseBadHeader(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []Problem
	}{
		{"empty", "", []Problem{{0, "", "empty: want a header row (order_id,model,variant,colour,options,due,priority) and one order per row"}}},
		{"header only", "order_id,model,variant,colour\n", []Problem{{0, "", "no orders in the file"}}},
		{"unknown and missing columns", "order_id,model,variant,color\nX,KV,2WD,white\n", []Problem{
			{1, "", `column 4: "color" is not an orders column; allowed: order_id, model, variant, colour, options, due, priority`},
			{1, "", "no colour column; the header must name order_id, model, variant, colour"},
		}},
		{"column twice", "order_id,model,variant,colour,Model\n", []Problem{{1, "", `column 5: "Model" appears twice`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("day.csv", strings.NewReader(tc.in), testProducts())
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if !reflect.DeepEqual(pe.Problems, tc.want) {
				t.Errorf("problems %+v\nwant %+v", pe.Problems, tc.want)
			}
		})
	}
}

func TestParseErrorListsEveryProblemUpToTheCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("order_id,model,variant,colour\n")
	for i := range ProblemsMax + 10 {
		fmt.Fprintf(&b, "B-%d,KV,2WD,pink\n", i)
	}
	b.WriteString("B-0,KV,2WD,white\n")
	_, err := Parse("big.csv", strings.NewReader(b.String()), testProducts())
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v", err)
	}
	if len(pe.Problems) != ProblemsMax || pe.Omitted != 11 {
		t.Errorf("%d problems, %d omitted; want %d and 11", len(pe.Problems), pe.Omitted, ProblemsMax)
	}
	lines := strings.Split(err.Error(), "\n")
	if lines[0] != "big.csv: 61 problem(s); no order imported" || lines[len(lines)-1] != "and 11 more" || len(lines) != ProblemsMax+2 {
		t.Errorf("error starts %q, ends %q, %d lines", lines[0], lines[len(lines)-1], len(lines))
	}
	if want := `big.csv:2: order B-0: colour "pink" is not one of the line's; allowed: white, black, red, mint, silver, blue`; lines[1] != want {
		t.Errorf("first problem %q, want %q", lines[1], want)
	}
}

func TestParseErrorFormat(t *testing.T) {
	e := &ParseError{File: "day.csv", Problems: []Problem{{0, "", "no orders in the file"}, {7, "", "no order id"}, {9, "X", "bad"}}}
	want := "day.csv: 3 problem(s); no order imported\nday.csv: no orders in the file\nday.csv:7: no order id\nday.csv:9: order X: bad"
	if e.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", e.Error(), want)
	}
}

func TestParseWithoutProducts(t *testing.T) {
	for _, name := range []string{"day.csv", "day.json", "day"} {
		if _, err := Parse(name, strings.NewReader("[]"), nil); !errors.Is(err, ErrNoProducts) {
			t.Errorf("%s: err = %v, want ErrNoProducts", name, err)
		}
	}
}

// FuzzParse: whatever the input, Parse returns orders or an error, never
// both; every order it returns is valid against the products.
func FuzzParse(f *testing.F) {
	for _, file := range []string{"day.csv", "day.json"} {
		f.Add(file, dayFile(f, file))
	}
	f.Add("x", []byte("order_id,model,variant,colour\n\"a\nb\",KV,2WD,white\n"))
	f.Add("x.json", []byte(`[{"order_id":"A","model":"KV","variant":"2WD","colour":"white","priority":"7"}]`))
	f.Add("x.json", []byte("[null, 1, {}]"))
	p := testProducts()
	all := p.AllOptions()
	f.Fuzz(func(t *testing.T, name string, in []byte) {
		got, err := Parse(name, bytes.NewReader(in), p)
		if (got == nil) == (err == nil) {
			t.Fatalf("orders %v and error %v", got, err)
		}
		var pe *ParseError
		if err != nil && errors.As(err, &pe) && len(pe.Problems) == 0 {
			t.Fatalf("a ParseError without problems")
		}
		seen := map[string]bool{}
		for _, o := range got {
			m, ok := p.Model(o.Model)
			if !ok || o.ID == "" || seen[o.ID] || strings.ContainsAny(o.ID, " ,\n") || !utf8.ValidString(o.ID) || !slices.Contains(p.Colours, o.Colour) {
				t.Fatalf("bad order accepted: %+v", o)
			}
			if _, ok := m.Variant(o.Variant); !ok {
				t.Fatalf("bad variant accepted: %+v", o)
			}
			seen[o.ID] = true
			if !slices.IsSorted(o.Options) || len(slices.Compact(slices.Clone(o.Options))) != len(o.Options) {
				t.Fatalf("options not sorted and unique: %v", o.Options)
			}
			for _, x := range o.Options {
				if !slices.Contains(all, x) {
					t.Fatalf("unknown option accepted: %+v", o)
				}
			}
		}
	})
}
