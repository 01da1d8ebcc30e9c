package sequence

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// CSPLib input limits: ParseCSPLib rejects larger headers rather than trust
// them with memory.
const (
	// CSPLibMaxCars is the most cars a CSPLib file may declare.
	CSPLibMaxCars = 1_000_000
	// CSPLibMaxClasses is the most classes a CSPLib file may declare.
	CSPLibMaxClasses = 100_000
	// CSPLibMaxLine is the longest line ParseCSPLib reads, in bytes.
	CSPLibMaxLine = 1 << 20
)

// ParseError is a CSPLib parse error at a line of the input (1-based,
// counting comment lines).
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Unwrap makes every ParseError match ErrInvalid.
func (e *ParseError) Unwrap() error { return ErrInvalid }

// ParseCSPLib reads a car-sequencing instance in the CSPLib prob001 format:
// lines starting with '%' are comments and blank lines are skipped; then
// "#cars #options #classes", a line of p per option, a line of q per
// option, and one line per class: id, count, then a 0 or 1 per option.
// Options are named "0", "1", … in file order. The problem returned passes
// Validate, and its counts add up to #cars.
//
// Errors are *ParseError (matching ErrInvalid) naming the line, or the
// reader's own error; a caller that knows the file name adds it:
// fmt.Errorf("%s:%w", path, err) gives "p00.txt:line 5: …".
func ParseCSPLib(r io.Reader) (*Problem, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), CSPLibMaxLine)
	lineNo := 0
	// next returns the next data line's fields, or nil at the end.
	next := func() ([]string, error) {
		for sc.Scan() {
			lineNo++
			s := strings.TrimSpace(sc.Text())
			if s == "" || s[0] == '%' {
				continue
			}
			return strings.Fields(s), nil
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return nil, &ParseError{lineNo + 1, fmt.Sprintf("line longer than %d bytes", CSPLibMaxLine)}
			}
			return nil, err
		}
		return nil, nil
	}
	bad := func(format string, a ...any) error { return &ParseError{lineNo, fmt.Sprintf(format, a...)} }
	ints := func(what string, f []string, want int) ([]int, error) {
		if len(f) != want {
			return nil, bad("%s: %d numbers, want %d", what, len(f), want)
		}
		v := make([]int, len(f))
		for i, s := range f {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > math.MaxInt32 {
				return nil, bad("%s: field %d: %q is not a non-negative integer", what, i+1, s)
			}
			v[i] = n
		}
		return v, nil
	}

	f, err := next()
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, &ParseError{lineNo, "no header line (#cars #options #classes)"}
	}
	head, err := ints("header (#cars #options #classes)", f, 3)
	if err != nil {
		return nil, err
	}
	nCars, nOpts, nClasses := head[0], head[1], head[2]
	switch {
	case nCars > CSPLibMaxCars:
		return nil, bad("header: %d cars, at most %d", nCars, CSPLibMaxCars)
	case nOpts == 0:
		return nil, bad("header: 0 options, want at least 1")
	case nOpts > MaxRules:
		return nil, bad("header: %d options, at most %d", nOpts, MaxRules)
	case nClasses > CSPLibMaxClasses:
		return nil, bad("header: %d classes, at most %d", nClasses, CSPLibMaxClasses)
	}

	var pq [2][]int
	for k, what := range []string{"p line (max cars per window)", "q line (window lengths)"} {
		if f, err = next(); err != nil {
			return nil, err
		}
		if f == nil {
			return nil, &ParseError{lineNo, "missing " + what}
		}
		if pq[k], err = ints(what, f, nOpts); err != nil {
			return nil, err
		}
	}
	p := &Problem{Options: make([]Option, nOpts), Classes: make([]Class, 0, min(nClasses, 1024))}
	for j := range p.Options {
		p.Options[j] = Option{Name: strconv.Itoa(j), P: pq[0][j], Q: pq[1][j]}
		if p.Options[j].Q < 1 {
			return nil, bad("q line: option %d has window length 0", j)
		}
	}

	seen := make(map[int]bool)
	total := 0
	for c := 0; c < nClasses; c++ {
		if f, err = next(); err != nil {
			return nil, err
		}
		if f == nil {
			return nil, &ParseError{lineNo, fmt.Sprintf("%d class lines, header says %d", c, nClasses)}
		}
		v, err := ints(fmt.Sprintf("class line %d", c+1), f, nOpts+2)
		if err != nil {
			return nil, err
		}
		cl := Class{ID: v[0], Count: v[1], Options: make([]bool, nOpts)}
		if seen[cl.ID] {
			return nil, bad("class %d appears twice", cl.ID)
		}
		seen[cl.ID] = true
		for j, b := range v[2:] {
			if b > 1 {
				return nil, bad("class %d: option %d flag is %d, want 0 or 1", cl.ID, j, b)
			}
			cl.Options[j] = b == 1
		}
		total += cl.Count
		if total > nCars {
			return nil, bad("class counts add up to more than the %d cars of the header", nCars)
		}
		p.Classes = append(p.Classes, cl)
	}
	if f, err = next(); err != nil {
		return nil, err
	}
	if f != nil {
		return nil, bad("unexpected data after the %d class lines", nClasses)
	}
	if total != nCars {
		return nil, &ParseError{lineNo, fmt.Sprintf("class counts add up to %d, header says %d cars", total, nCars)}
	}
	return p, nil
}

// WriteCSPLib writes p in the CSPLib prob001 format that ParseCSPLib reads
// (option names are not kept). It returns ErrInvalid errors from Validate
// and w's write errors.
func WriteCSPLib(w io.Writer, p *Problem) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if len(p.Options) == 0 {
		return fmt.Errorf("%w: the CSPLib format needs at least one option", ErrInvalid)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%d %d %d\n", p.Cars(), len(p.Options), len(p.Classes))
	for k := 0; k < 2; k++ {
		for j, o := range p.Options {
			if j > 0 {
				bw.WriteByte(' ')
			}
			if k == 0 {
				bw.WriteString(strconv.Itoa(o.P))
			} else {
				bw.WriteString(strconv.Itoa(o.Q))
			}
		}
		bw.WriteByte('\n')
	}
	for _, c := range p.Classes {
		fmt.Fprintf(bw, "%d %d", c.ID, c.Count)
		for _, b := range c.Options {
			if b {
				bw.WriteString(" 1")
			} else {
				bw.WriteString(" 0")
			}
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
