package sequence

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

const tinyCSPLib = `% a comment
%another
3 2 2
1 1
2 3
0 2 1 0

1 1 0 1
`

func TestParseCSPLib(t *testing.T) {
	p, err := ParseCSPLib(strings.NewReader(tinyCSPLib))
	if err != nil {
		t.Fatal(err)
	}
	want := &Problem{
		Options: []Option{{Name: "0", P: 1, Q: 2}, {Name: "1", P: 1, Q: 3}},
		Classes: []Class{{ID: 0, Count: 2, Options: []bool{true, false}}, {ID: 1, Count: 1, Options: []bool{false, true}}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
}

func TestParseCSPLibInstances(t *testing.T) {
	for _, tc := range []struct {
		file                  string
		cars, classes, option int
	}{
		{"testdata/p00.txt", 100, 22, 5},
		{"testdata/p04.txt", 100, 23, 5},
		{"testdata/p09.txt", 200, 24, 5},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p := mustParseFile(t, tc.file)
			if p.Cars() != tc.cars || len(p.Classes) != tc.classes || len(p.Options) != tc.option {
				t.Fatalf("%d cars, %d classes, %d options; want %d, %d, %d",
					p.Cars(), len(p.Classes), len(p.Options), tc.cars, tc.classes, tc.option)
			}
			// Every CSPLib file has the ratios 1/2, 2/3, 1/3, 2/5, 1/5.
			want := []Option{{"0", 1, 2}, {"1", 2, 3}, {"2", 1, 3}, {"3", 2, 5}, {"4", 1, 5}}
			if !reflect.DeepEqual(p.Options, want) {
				t.Fatalf("options %v, want %v", p.Options, want)
			}
		})
	}
}

func TestParseCSPLibErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
		msg      string
	}{
		{"empty", "", 0, "no header"},
		{"only comments", "% x\n% y\n", 2, "no header"},
		{"short header", "% c\n3 2\n", 2, "header"},
		{"not a number", "3 2 x\n", 1, `"x" is not a non-negative integer`},
		{"negative", "3 -2 2\n", 1, "not a non-negative"},
		{"zero options", "3 0 1\n", 1, "0 options"},
		{"too many options", "3 65 1\n", 1, "at most 64"},
		{"too many cars", "99999999 1 1\n", 1, "cars, at most"},
		{"missing p", "3 2 2\n", 1, "missing p line"},
		{"short p", "3 2 2\n1\n", 2, "p line"},
		{"missing q", "3 2 2\n1 1\n", 2, "missing q line"},
		{"zero q", "3 2 2\n1 1\n2 0\n", 3, "window length 0"},
		{"short class", "3 2 2\n1 1\n2 3\n0 2 1\n", 4, "class line 1: 3 numbers, want 4"},
		{"bad flag", "3 2 2\n1 1\n2 3\n0 2 1 2\n", 4, "flag is 2"},
		{"duplicate class", "3 2 2\n1 1\n2 3\n0 2 1 0\n0 1 0 1\n", 5, "class 0 appears twice"},
		{"missing class", "% c\n3 2 2\n1 1\n2 3\n0 2 1 0\n", 5, "1 class lines, header says 2"},
		{"counts too high", "3 2 2\n1 1\n2 3\n0 2 1 0\n1 2 0 1\n", 5, "more than the 3 cars"},
		{"counts too low", "3 2 2\n1 1\n2 3\n0 1 1 0\n1 1 0 1\n", 5, "add up to 2, header says 3"},
		{"trailing data", "3 2 2\n1 1\n2 3\n0 2 1 0\n1 1 0 1\n\n7\n", 7, "after the 2 class lines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCSPLib(strings.NewReader(tc.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a *ParseError", err)
			}
			if pe.Line != tc.line || !strings.Contains(pe.Msg, tc.msg) {
				t.Fatalf("error %q at line %d, want %q at line %d", pe.Msg, pe.Line, tc.msg, tc.line)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
		})
	}
}

func TestWriteCSPLibRoundTrip(t *testing.T) {
	p := mustParseFile(t, "testdata/p03.txt")
	var buf bytes.Buffer
	if err := WriteCSPLib(&buf, p); err != nil {
		t.Fatal(err)
	}
	q, err := ParseCSPLib(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatal("written and parsed again, the problem differs")
	}
}

// FuzzParseCSPLib checks that any input either fails with a ParseError or
// gives a valid problem that matches its header and survives a round trip.
func FuzzParseCSPLib(f *testing.F) {
	f.Add([]byte(tinyCSPLib))
	f.Add([]byte("1 1 1\n1\n1\n0 1 1\n"))
	f.Add([]byte("3 2 2\n1 1\n2 3\n0 2 1 2\n"))
	f.Add([]byte("%\n\n 2 1 2 \n0\n1\n5 1 1\n6 1 0\n"))
	for _, name := range []string{"testdata/p00.txt", "testdata/p09.txt"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := ParseCSPLib(bytes.NewReader(in))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 0 {
				t.Fatalf("error %v is not a ParseError with a line", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed problem invalid: %v", err)
		}
		var buf bytes.Buffer
		if err := WriteCSPLib(&buf, p); err != nil {
			t.Fatal(err)
		}
		q, err := ParseCSPLib(&buf)
		if err != nil {
			t.Fatalf("written problem does not parse: %v\n%s", err, buf.Bytes())
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatal("round trip changed the problem")
		}
		// Any ordering of the cars is a sequence of the problem.
		var seq []int
		for _, c := range p.Classes {
			for range min(c.Count, 1000) {
				seq = append(seq, c.ID)
			}
		}
		if len(seq) == p.Cars() {
			if err := CheckSequence(p, seq); err != nil {
				t.Fatal(err)
			}
			if w, e := Violations(p, seq); w < 0 || e < w {
				t.Fatalf("violations W=%d E=%d", w, e)
			}
		}
	})
}
