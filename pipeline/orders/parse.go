// Package orders reads the planner's orders — from CSV and JSON files and
// through the HTTP API — checks every one against the line's products and
// hands them to the record. A file with any bad order is rejected whole.
package orders

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/sequence"
	"github.com/keiline/keiline/schema"
)

// Limits of an orders file.
const (
	// ProblemsMax is the most problems a ParseError lists; the rest are
	// counted.
	ProblemsMax = 50
	// OrderIDMax is the longest order id, in bytes.
	OrderIDMax = 64
)

// Columns are the columns of an orders CSV file (and the keys of a JSON
// order). The first four are required; the header names them in any order
// and any case.
var Columns = []string{"order_id", "model", "variant", "colour", "options", "due", "priority"}

const requiredColumns = 4

// ErrNoProducts is returned when the line config has no products section,
// so orders cannot be checked.
var ErrNoProducts = errors.New("the line config has no products section: add one (models, variants, colours; see docs/line-config.md) to import orders")

// Problem is one thing wrong in an orders file.
type Problem struct {
	// Line in the file (1-based); 0 for the file as a whole.
	Line int `json:"line"`
	// OrderID is the order's id, when the row has one.
	OrderID string `json:"order_id,omitempty"`
	// Message says what is wrong and what is allowed.
	Message string `json:"message"`
}

// ParseError lists the problems of an orders file; none of its orders is
// imported.
type ParseError struct {
	File     string
	Problems []Problem // at most ProblemsMax
	// Omitted counts the problems beyond ProblemsMax.
	Omitted int
}

func (e *ParseError) Error() string {
	var b strings.Builder
	n := len(e.Problems) + e.Omitted
	fmt.Fprintf(&b, "%s: %d problem(s); no order imported", e.File, n)
	for _, p := range e.Problems {
		b.WriteString("\n")
		b.WriteString(e.format(p))
	}
	if e.Omitted > 0 {
		fmt.Fprintf(&b, "\nand %d more", e.Omitted)
	}
	return b.String()
}

// format writes p as file:line: order X: message.
func (e *ParseError) format(p Problem) string {
	var b strings.Builder
	b.WriteString(e.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.OrderID != "" {
		fmt.Fprintf(&b, "order %s: ", p.OrderID)
	}
	b.WriteString(p.Message)
	return b.String()
}

// add records a problem, counting those beyond ProblemsMax.
func (e *ParseError) add(line int, id, format string, a ...any) {
	if len(e.Problems) >= ProblemsMax {
		e.Omitted++
		return
	}
	e.Problems = append(e.Problems, Problem{Line: line, OrderID: id, Message: fmt.Sprintf(format, a...)})
}

func (e *ParseError) err() error {
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}

// Parse reads the orders in r, a CSV or JSON orders file named name (see
// docs/orders.md): the format is that of name's extension, .csv or .json,
// else sniffed from the content. Every order is checked against products;
// its options become its explicit options and those its model and variant
// imply, sorted. Any bad order rejects the whole file: the error is a
// *ParseError listing every problem with its line. A nil products is
// ErrNoProducts.
func Parse(name string, r io.Reader, products *line.Products) ([]sequence.Order, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return ParseCSV(name, r, products)
	case ".json":
		return ParseJSON(name, r, products)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if c := firstByte(b); c == '[' || c == '{' {
		return parseJSON(name, b, products)
	}
	return ParseCSV(name, bytes.NewReader(b), products)
}

// firstByte is b's first byte that is not white space or a byte order
// mark; 0 when there is none.
func firstByte(b []byte) byte {
	b = bytes.TrimLeft(bytes.TrimPrefix(b, bom), " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

var bom = []byte("\uFEFF")

// row is one order as written in the file, before it is checked.
type row struct {
	line                       int
	id, model, variant, colour string
	options                    []string
	due, priority              string
}

// ParseCSV reads an orders CSV file: a header row naming the Columns, then
// one order per row. Options are separated by ';' or '|'; due is RFC 3339
// or a date (YYYY-MM-DD, midnight UTC), empty for none; priority an
// integer, empty for 0. Errors as Parse.
func ParseCSV(name string, r io.Reader, products *line.Products) ([]sequence.Order, error) {
	if products == nil {
		return nil, ErrNoProducts
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	perr := &ParseError{File: name}
	if !utf8.Valid(b) {
		for i, l := range bytes.Split(b, []byte("\n")) {
			if !utf8.Valid(l) {
				perr.add(i+1, "", "not UTF-8 text: save the file as UTF-8")
				return nil, perr
			}
		}
	}
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, bom)))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		perr.add(0, "", "empty: want a header row (%s) and one order per row", strings.Join(Columns, ","))
		return nil, perr
	}
	if err != nil {
		return nil, csvProblem(perr, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case !slices.Contains(Columns, h):
			perr.add(1, "", "column %d: %q is not an orders column; allowed: %s", i+1, header[i], strings.Join(Columns, ", "))
		case col[h] != 0:
			perr.add(1, "", "column %d: %q appears twice", i+1, header[i])
		default:
			col[h] = i + 1 // 0 is "absent"
		}
	}
	for _, c := range Columns[:requiredColumns] {
		if col[c] == 0 {
			perr.add(1, "", "no %s column; the header must name %s", c, strings.Join(Columns[:requiredColumns], ", "))
		}
	}
	if err := perr.err(); err != nil {
		return nil, err
	}
	field := func(rec []string, c string) string {
		if i := col[c]; i > 0 && i <= len(rec) {
			return strings.TrimSpace(rec[i-1])
		}
		return ""
	}
	var rows []row
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvProblem(perr, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) > len(header) {
			perr.add(line, field(rec, "order_id"), "%d fields, but the header has %d columns", len(rec), len(header))
			continue
		}
		rows = append(rows, row{
			line: line, id: field(rec, "order_id"), model: field(rec, "model"), variant: field(rec, "variant"),
			colour: field(rec, "colour"), options: splitOptions(field(rec, "options")),
			due: field(rec, "due"), priority: field(rec, "priority"),
		})
	}
	return check(perr, rows, products)
}

// csvProblem adds a CSV syntax error to perr (reading stops there) and
// returns perr.
func csvProblem(perr *ParseError, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		perr.add(pe.Line, "", "CSV: %v (column %d)", pe.Err, pe.Column)
		return perr
	}
	return fmt.Errorf("%s: %w", perr.File, err)
}

// splitOptions splits a CSV options field at ';' and '|'.
func splitOptions(s string) []string {
	var out []string
	for _, o := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '|' }) {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// jsonOrder is one order of a JSON orders file.
type jsonOrder struct {
	OrderID  string          `json:"order_id"`
	Model    string          `json:"model"`
	Variant  string          `json:"variant"`
	Colour   string          `json:"colour"`
	Options  []string        `json:"options"`
	Due      *string         `json:"due"`
	Priority json.RawMessage `json:"priority"`
}

// ParseJSON reads an orders JSON file: an array of objects with the
// Columns as keys (options an array of strings, due a string or null,
// priority an integer). Unknown keys are errors. Errors as Parse.
func ParseJSON(name string, r io.Reader, products *line.Products) ([]sequence.Order, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return parseJSON(name, b, products)
}

func parseJSON(name string, b []byte, products *line.Products) ([]sequence.Order, error) {
	if products == nil {
		return nil, ErrNoProducts
	}
	perr := &ParseError{File: name}
	if bytes.HasPrefix(b, bom) {
		b = b[len(bom):]
	}
	lineAt := func(off int64) int { return bytes.Count(b[:min(max(off, 0), int64(len(b)))], []byte("\n")) + 1 }
	dec := json.NewDecoder(bytes.NewReader(b))
	syntax := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			perr.add(lineAt(se.Offset), "", "JSON: %v", se)
		} else if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			perr.add(lineAt(int64(len(b))), "", "JSON: unexpected end of the file")
		} else {
			perr.add(lineAt(dec.InputOffset()), "", "JSON: %v", err)
		}
		return perr
	}
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		perr.add(0, "", "empty: want a JSON array of orders")
		return nil, perr
	}
	if err != nil {
		return nil, syntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		perr.add(lineAt(dec.InputOffset()), "", "JSON: want an array of orders, [{\"order_id\": ...}, ...]")
		return nil, perr
	}
	var rows []row
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntax(err)
		}
		// InputOffset is now the end of the value, which raw holds exactly.
		line := lineAt(dec.InputOffset() - int64(len(raw)))
		if raw[0] != '{' {
			perr.add(line, "", "want an order object {\"order_id\": ...}, not %s", shorten(raw))
			continue
		}
		var o jsonOrder
		od := json.NewDecoder(bytes.NewReader(raw))
		od.DisallowUnknownFields()
		if err := od.Decode(&o); err != nil {
			perr.add(line, o.OrderID, "%s", jsonProblem(err))
			continue
		}
		r := row{line: line, id: strings.TrimSpace(o.OrderID), model: strings.TrimSpace(o.Model), variant: strings.TrimSpace(o.Variant),
			colour: strings.TrimSpace(o.Colour), priority: jsonPriority(o.Priority)}
		if o.Due != nil {
			r.due = strings.TrimSpace(*o.Due)
		}
		for _, opt := range o.Options {
			if opt = strings.TrimSpace(opt); opt != "" {
				r.options = append(r.options, opt)
			}
		}
		rows = append(rows, r)
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntax(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		perr.add(lineAt(dec.InputOffset()), "", "JSON: more after the array of orders")
		return nil, perr
	}
	return check(perr, rows, products)
}

// jsonProblem says what is wrong with one JSON order.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Field == "options":
		return fmt.Sprintf("options: want an array of option codes (strings), not a JSON %s", te.Value)
	case errors.As(err, &te) && strings.HasPrefix(te.Field, "options"):
		return fmt.Sprintf("options: want option codes (strings), not a JSON %s", te.Value)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("%s: want a string, not a JSON %s", te.Field, te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Sprintf("%s; allowed: %s", strings.TrimPrefix(err.Error(), "json: "), strings.Join(Columns, ", "))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// shorten returns the start of a JSON value for a message.
func shorten(raw []byte) string {
	if len(raw) > 20 {
		return string(raw[:20]) + "…"
	}
	return string(raw)
}

// jsonPriority is the text of a JSON priority: a number or a string as
// written, empty for none or null.
func jsonPriority(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	if string(raw) == "null" {
		return ""
	}
	return string(raw)
}

// check validates rows against products, adding every problem to perr, and
// returns the orders when there is none.
func check(perr *ParseError, rows []row, products *line.Products) ([]sequence.Order, error) {
	if len(rows) == 0 && len(perr.Problems) == 0 {
		perr.add(0, "", "no orders in the file")
	}
	allOptions := products.AllOptions()
	var models []string
	for _, m := range products.Models {
		models = append(models, m.Code)
	}
	firstLine := map[string]int{}
	out := make([]sequence.Order, 0, len(rows))
	for _, r := range rows {
		n := len(perr.Problems) + perr.Omitted
		bad := func(format string, a ...any) { perr.add(r.line, r.id, format, a...) }
		switch {
		case r.id == "":
			bad("no order id")
		case len(r.id) > OrderIDMax:
			bad("order id is %d bytes long, at most %d", len(r.id), OrderIDMax)
		case strings.ContainsFunc(r.id, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) || c == ',' }):
			bad("order id %q has white space or a comma", r.id)
		case firstLine[r.id] != 0:
			bad("order id used again (first on line %d)", firstLine[r.id])
		default:
			firstLine[r.id] = r.line
		}
		var variants []string
		if r.model == "" {
			bad("no model; allowed: %s", strings.Join(models, ", "))
		} else if m, ok := products.Model(r.model); !ok {
			bad("model %q is not one of the line's; allowed: %s", r.model, strings.Join(models, ", "))
		} else {
			for _, v := range m.Variants {
				variants = append(variants, v.Name)
			}
			if _, ok := m.Variant(r.variant); !ok {
				what := fmt.Sprintf("variant %q", r.variant)
				if r.variant == "" {
					what = "no variant"
				}
				bad("%s of model %s; allowed: %s", what, r.model, strings.Join(variants, ", "))
			}
		}
		if r.colour == "" {
			bad("no colour; allowed: %s", strings.Join(products.Colours, ", "))
		} else if !slices.Contains(products.Colours, r.colour) {
			bad("colour %q is not one of the line's; allowed: %s", r.colour, strings.Join(products.Colours, ", "))
		}
		for _, o := range r.options {
			if !slices.Contains(allOptions, o) {
				bad("option %q is not one of the line's; allowed: %s", o, strings.Join(allOptions, ", "))
			}
		}
		due, err := parseDue(r.due)
		if err != nil {
			bad("%v", err)
		}
		prio := 0
		if r.priority != "" {
			p, err := strconv.Atoi(r.priority)
			if err != nil {
				bad("priority %q is not an integer", r.priority)
			}
			prio = p
		}
		if len(perr.Problems)+perr.Omitted > n {
			continue
		}
		opts := append(slices.Clone(r.options), products.ImpliedOptions(r.model, r.variant)...)
		slices.Sort(opts)
		out = append(out, sequence.Order{ID: r.id, Model: r.model, Variant: r.variant, Colour: r.colour,
			Options: slices.Compact(opts), Due: due, Priority: prio})
	}
	if err := perr.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// DateLayout is the due date without a time: midnight UTC.
const DateLayout = "2006-01-02"

// parseDue parses a due time: RFC 3339 or a date; empty is the zero time.
func parseDue(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(DateLayout, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("due %q is neither RFC 3339 (2026-11-27T06:00:00+09:00) nor a date (2026-11-27)", s)
}

// Record converts orders to the record's orders (schema.Order).
func Record(orders []sequence.Order) []schema.Order {
	out := make([]schema.Order, len(orders))
	for i, o := range orders {
		out[i] = schema.Order{ID: o.ID, Model: o.Model, Variant: o.Variant, Colour: o.Colour,
			Options: o.Options, Due: o.Due, Priority: o.Priority}
	}
	return out
}
