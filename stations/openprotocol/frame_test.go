package openprotocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestFrameEncodeDecode(t *testing.T) {
	for _, f := range []Frame{
		{MID: 1, Revision: 6},
		{MID: 61, Revision: 2, Data: []byte("010001")},
		{MID: 9999},
		{MID: 50, Revision: 1, NoAck: true, Station: 3, Spindle: 12, Sequence: 99, Parts: 2, Part: 1, Data: []byte("VIN")},
	} {
		b := f.Append(nil)
		if len(b) != HeaderLen+len(f.Data)+1 || b[len(b)-1] != 0 {
			t.Fatalf("encoded %q", b)
		}
		g, err := DecodeFrame(b)
		if err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
		want := f
		want.Revision = max(f.Revision, 1)
		if g.MID != want.MID || g.Revision != want.Revision || g.NoAck != want.NoAck || g.Station != want.Station ||
			g.Spindle != want.Spindle || g.Sequence != want.Sequence || g.Parts != want.Parts || g.Part != want.Part ||
			!bytes.Equal(g.Data, want.Data) || !bytes.Equal(g.Raw, b) {
			t.Errorf("decoded %+v, want %+v", g, want)
		}
	}
	// The header of the specification's example: blank revision, station,
	// spindle and parts fields.
	f, err := DecodeFrame([]byte("00209999            \x00"))
	if err != nil || f.MID != 9999 || f.Revision != 1 {
		t.Fatalf("blank header fields: %+v, %v", f, err)
	}
	if got := string(Frame{MID: 62}.Append(nil)); got != "002000620010        \x00" {
		t.Errorf("MID 0062 encoded %q", got)
	}
}

func TestFrameReaderSplitAndMerged(t *testing.T) {
	var stream []byte
	var want []Frame
	for i, data := range []string{"", "0000", strings.Repeat("x", 500), "tail"} {
		f := Frame{MID: 61 + i, Revision: i + 1, Data: []byte(data)}
		want = append(want, f)
		stream = f.Append(stream)
	}
	for _, tc := range []struct {
		name string
		r    io.Reader
	}{
		{"merged in one read", bytes.NewReader(stream)},
		{"one byte a read", iotest.OneByteReader(bytes.NewReader(stream))},
		{"half reads", iotest.HalfReader(bytes.NewReader(stream))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr := NewFrameReader(tc.r, 0)
			for _, w := range want {
				g, err := fr.Next()
				if err != nil {
					t.Fatal(err)
				}
				if g.MID != w.MID || g.Revision != w.Revision || !bytes.Equal(g.Data, w.Data) {
					t.Fatalf("got MID %d rev %d %q, want %+v", g.MID, g.Revision, g.Data, w)
				}
			}
			if _, err := fr.Next(); err != io.EOF {
				t.Fatalf("at the end: %v, want io.EOF", err)
			}
		})
	}
	fr := NewFrameReader(bytes.NewReader(stream[:30]), 0)
	fr.Next()
	if _, err := fr.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("stream ending inside a frame: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestMalformedFrames(t *testing.T) {
	good := string(Frame{MID: 9999}.Append(nil))
	for _, tc := range []struct {
		name, b, reason string
		max             int
	}{
		{"letters in the length", "00x0" + good[4:], "length is not 4 digits", 0},
		{"length below a header", "0019" + good[4:19] + "\x00", "outside 20..", 0},
		{"length beyond the maximum", "0500" + good[4:], "length 500 is outside 20..100", 100},
		{"no NUL", good[:20] + "X", "not the NUL", 0},
		{"control byte in the header", good[:9] + "\x07" + good[10:], "not printable ASCII", 0},
		{"byte above ASCII in the header", good[:15] + "\xc3" + good[16:], "not printable ASCII", 0},
		{"MID not digits", good[:4] + "99a9" + good[8:], "MID is not 4 digits", 0},
		{"revision not digits", good[:8] + "0x1" + good[11:], "revision", 0},
		{"no-ack flag", good[:11] + "7" + good[12:], "no-ack flag", 0},
		{"station id", good[:12] + "a1" + good[14:], "station id", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewFrameReader(strings.NewReader(tc.b), tc.max).Next()
			var fe *FrameError
			if !errors.As(err, &fe) || !errors.Is(err, ErrFrame) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("error %v, want a FrameError saying %q", err, tc.reason)
			}
		})
	}
}

func TestParseErrorsNameTheParameter(t *testing.T) {
	loc := time.UTC
	for _, tc := range []struct {
		name string
		f    Frame
		want string
	}{
		{"short data", Frame{MID: 61, Revision: 1, Data: []byte("010004")}, "parameter 02 channel ID: the data ends"},
		{"wrong parameter id", Frame{MID: 61, Revision: 1, Data: []byte("010004030001")}, "parameter 02 channel ID: byte 6 holds parameter id \"03\""},
		{"revision too high", Frame{MID: 61, Revision: 8}, "revision above 7"},
		{"not a result", Frame{MID: 62}, "not a MID 0061"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseResult(tc.f, loc)
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	if _, err := ParseOldResult(Frame{MID: 65, Revision: 1, Data: []byte("01000000000x")}, loc); err == nil ||
		!strings.Contains(err.Error(), "MID 0065 revision 1 parameter 01 tightening ID") {
		t.Errorf("bad tightening id: %v", err)
	}
}

func TestParseStamp(t *testing.T) {
	loc := time.FixedZone("JST", 9*3600)
	now := time.Now().In(loc).Truncate(time.Second)
	got, ok := parseStamp([]byte(now.Format(TimeLayout)), loc)
	if !ok || !got.Equal(now) {
		t.Fatalf("parseStamp(%s) = %v, %v", now.Format(TimeLayout), got, ok)
	}
	year := now.Format("2006")
	for _, bad := range []string{year + "-04-31:10:00:00", year + "-13-01:10:00:00", year + "-01-01:24:00:00",
		year + "-01-01 10:00:00", year + "-01-0a:10:00:00", year + "-1-01:10:00:00"} {
		if _, ok := parseStamp([]byte(bad), loc); ok {
			t.Errorf("parseStamp(%q) accepted", bad)
		}
		if _, err := time.ParseInLocation(TimeLayout, bad, loc); err == nil {
			t.Errorf("time.ParseInLocation accepts %q: the hand parser is stricter than the layout", bad)
		}
	}
}
