// Package csvsafe writes CSV that a spreadsheet opens as data, never as
// formulas: every CSV export of keiline goes through it.
//
// A spreadsheet (Excel, LibreOffice Calc, Google Sheets) evaluates a cell
// that starts with = + - or @, and some also one that starts with a tab or
// a carriage return followed by one of those. A record's text comes from
// outside keiline (a part serial or lot a PLC read off a barcode, a
// supplier name in an orders file, a defect text typed at a terminal), so
// a cell such as =HYPERLINK("http://…") in an export would run when an
// auditor opens it. Following OWASP's CSV injection advice, Cell puts a
// single quote before any cell that starts with one of those characters:
// the spreadsheet then shows the text as typed (the quote hidden in Excel,
// visible in some others), and the cell is still the original text to a
// program that strips one leading quote.
//
// The one exemption: a cell that is a plain decimal number (an optional
// minus, digits, an optional fraction and an optional exponent, such as
// -12.5 or -1e-06) is left alone, so negative measurements stay numbers a
// spreadsheet can chart. Such a cell cannot be a formula: every
// spreadsheet reads it as the number it is. Anything else that starts
// with a minus ("-1+2", "-Inf", "-A1") is quoted.
package csvsafe

import (
	"encoding/csv"
	"io"
	"regexp"
)

// number is a plain decimal number, as strconv.FormatFloat(v, 'g', -1, 64)
// and strconv.Itoa write them for finite values.
var number = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// Cell returns s as a spreadsheet will show it as text: with a single
// quote before it when it starts with = + - @, a tab or a carriage return
// and is not a plain decimal number; else s unchanged.
func Cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		if s[0] == '-' && number.MatchString(s) {
			return s
		}
		return "'" + s
	}
	return s
}

// Writer is a csv.Writer that passes every cell through Cell.
type Writer struct {
	w   *csv.Writer
	buf []string
}

// NewWriter returns a Writer to out.
func NewWriter(out io.Writer) *Writer { return &Writer{w: csv.NewWriter(out)} }

// Write writes one record, each cell made safe by Cell; record itself is
// not changed. Errors are those of csv.Writer.Write.
func (w *Writer) Write(record []string) error {
	w.buf = w.buf[:0]
	for _, c := range record {
		w.buf = append(w.buf, Cell(c))
	}
	return w.w.Write(w.buf)
}

// Flush writes any buffered data to the underlying writer; Error reports
// any error of a Write or Flush.
func (w *Writer) Flush() { w.w.Flush() }

// Error reports any error that occurred during a previous Write or Flush.
func (w *Writer) Error() error { return w.w.Error() }
