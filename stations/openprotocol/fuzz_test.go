package openprotocol

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// The seed corpora under testdata/fuzz hold real frames of the simulated
// controller: MID 0061 revisions 1 to 7, MID 0065 revisions 1 to 6.

// FuzzFrameReader: any byte stream decodes into frames or ends in io.EOF,
// io.ErrUnexpectedEOF or a FrameError, never a panic; every frame decoded
// encodes back to the bytes it came from, but for blank header fields.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte("00209999001         \x00"))
	f.Add([]byte("0020999900100       \x000026000500100       0018\x00"))
	f.Add([]byte("00a0"))
	f.Add([]byte("9999"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := NewFrameReader(bytes.NewReader(b), 0)
		for {
			fm, err := fr.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFrame) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			again, err := DecodeFrame(fm.Append(nil))
			if err != nil {
				t.Fatalf("re-encoded frame does not decode: %v", err)
			}
			if again.MID != fm.MID || again.Revision != fm.Revision || again.NoAck != fm.NoAck ||
				again.Station != fm.Station || again.Parts != fm.Parts || !bytes.Equal(again.Data, fm.Data) {
				t.Fatalf("re-encoded %+v, decoded %+v", again, fm)
			}
			if len(fm.Raw) != HeaderLen+len(fm.Data)+1 {
				t.Fatalf("raw of %d bytes for %d bytes of data", len(fm.Raw), len(fm.Data))
			}
		}
	})
}

// checkParsed asserts what holds of any result parsed without error.
func checkParsed(t *testing.T, r Result, err error, mid, rev int, data []byte) {
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrProtocol) || pe.MID != mid {
			t.Fatalf("error %v is not a ParseError of MID %d", err, mid)
		}
		return
	}
	if r.MID != mid || r.Revision != rev {
		t.Fatalf("parsed MID %d rev %d from MID %d rev %d", r.MID, r.Revision, mid, rev)
	}
	if r.TorqueStatus < Low || r.TorqueStatus > High || r.AngleStatus < Low || r.AngleStatus > High ||
		r.BatchStatus < BatchNOK || r.BatchStatus > BatchRunning || r.Time.IsZero() {
		t.Fatalf("out-of-range values %+v", r)
	}
	if (rev >= 2) != (r.Detail != nil) || (mid == 61) != (r.Limits != nil) {
		t.Fatalf("revision %d: detail %v limits %v", rev, r.Detail != nil, r.Limits != nil)
	}
	if !bytes.Contains(r.Raw, data) {
		t.Fatal("raw frame lost the data")
	}
}

func FuzzParseResult(f *testing.F) {
	f.Add(1, []byte(""))
	f.Add(2, []byte("0100040201"))
	f.Add(9, []byte("01"))
	f.Fuzz(func(t *testing.T, rev int, data []byte) {
		if len(data) > FrameLengthMax-HeaderLen {
			return
		}
		rev = max(1, min(rev, 999))
		fr := Frame{MID: 61, Revision: rev, Data: data}
		fr.Raw = fr.Append(nil)
		r, err := ParseResult(fr, time.UTC)
		checkParsed(t, r, err, 61, rev, data)
	})
}

func FuzzParseOldResult(f *testing.F) {
	f.Add(1, []byte("010000000001"))
	f.Add(2, []byte(""))
	f.Fuzz(func(t *testing.T, rev int, data []byte) {
		if len(data) > FrameLengthMax-HeaderLen {
			return
		}
		rev = max(1, min(rev, 999))
		fr := Frame{MID: 65, Revision: rev, Data: data}
		fr.Raw = fr.Append(nil)
		r, err := ParseOldResult(fr, time.UTC)
		checkParsed(t, r, err, 65, rev, data)
	})
}

// FuzzParseReplies: MID 0002, 0004 and 0005 data never panic the parsers,
// and a MID 0002 that parses keeps the revision it came with.
func FuzzParseReplies(f *testing.F) {
	f.Add(1, []byte("010004020103C04 wheel nutrunner      "))
	f.Add(6, []byte("010004020103C04 wheel nutrunner      04SIM052.8.0              06keiline-sim        07keiline-sim        08simulated               09S0004     1000111001121130"))
	f.Add(1, []byte("006415"))
	f.Add(1, []byte("0018"))
	f.Fuzz(func(t *testing.T, rev int, data []byte) {
		rev = max(1, min(rev, 999))
		in, err := parseInfo(Frame{MID: 2, Revision: rev, Data: data})
		if err == nil && in.Revision != rev {
			t.Fatalf("revision %d parsed as %d", rev, in.Revision)
		}
		if err != nil && !errors.Is(err, ErrProtocol) {
			t.Fatalf("MID 0002 error %v is not ErrProtocol", err)
		}
		if mid, code, err := errorReply(Frame{MID: 4, Data: data}); err == nil && (mid < 0 || mid > 9999 || code < 0 || code > 99) {
			t.Fatalf("MID 0004 parsed as MID %d code %d", mid, code)
		}
		acceptedMID(Frame{MID: 5, Data: data})
	})
}
