package openprotocol

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Frame layout (Open Protocol specification, "Message structure"): a
// 20-byte ASCII header, the data field, and a NUL terminator. The length in
// the header counts the header and the data, not the NUL.
const (
	// HeaderLen is the length of the header.
	HeaderLen = 20
	// FrameLengthMax is the largest length the 4-digit length field can say.
	FrameLengthMax = 9999
)

// ErrFrame is wrapped by every error about a malformed frame: bad length
// digits, a length out of range, a header that is not ASCII, a missing NUL.
// A connection that carried one cannot be trusted to be in step any more.
var ErrFrame = errors.New("malformed frame")

// FrameError says what is wrong with a frame, quoting its first bytes.
type FrameError struct {
	Reason string
	Head   []byte // the first bytes of the frame, at most HeaderLen+4
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("%v: %s (starts %q)", ErrFrame, e.Reason, e.Head)
}

// Unwrap makes errors.Is(err, ErrFrame) true.
func (e *FrameError) Unwrap() error { return ErrFrame }

// Frame is one Open Protocol message.
type Frame struct {
	// MID is the message id, 1 to 9999.
	MID int
	// Revision of the MID. A header with spaces or 000 says 1.
	Revision int
	// NoAck is the header's no-ack flag (subscriptions: 1 means the
	// controller expects no acknowledge).
	NoAck bool
	// Station and Spindle ids, and the sequence number, 0 when blank.
	Station, Spindle, Sequence int
	// Parts is the number of message parts and Part this one's number, 0
	// when blank.
	Parts, Part int
	// Data is the data field, without the NUL.
	Data []byte
	// Raw is the whole frame as received, NUL included (nil for frames
	// made here). Data is a slice of it.
	Raw []byte
}

// Append appends the encoded frame to dst and returns the result. Blank
// header fields (0) are sent as spaces; a Revision below 1 is sent as 001.
// It panics if the data is longer than FrameLengthMax-HeaderLen, which no
// message made by this package is.
func (f Frame) Append(dst []byte) []byte {
	n := HeaderLen + len(f.Data)
	if n > FrameLengthMax {
		panic(fmt.Sprintf("openprotocol: MID %04d data of %d bytes is too long", f.MID, len(f.Data)))
	}
	dst = appendDigits(dst, n, 4)
	dst = appendDigits(dst, f.MID, 4)
	dst = appendDigits(dst, max(f.Revision, 1), 3)
	if f.NoAck {
		dst = append(dst, '1')
	} else {
		dst = append(dst, '0')
	}
	dst = appendBlankOr(dst, f.Station, 2)
	dst = appendBlankOr(dst, f.Spindle, 2)
	dst = appendBlankOr(dst, f.Sequence, 2)
	dst = appendBlankOr(dst, f.Parts, 1)
	dst = appendBlankOr(dst, f.Part, 1)
	dst = append(dst, f.Data...)
	return append(dst, 0)
}

// appendDigits appends v as exactly width decimal digits, zero-padded; a
// value too wide keeps its low digits.
func appendDigits(dst []byte, v, width int) []byte {
	var b [10]byte
	for i := width - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:width]...)
}

func appendBlankOr(dst []byte, v, width int) []byte {
	if v <= 0 {
		for range width {
			dst = append(dst, ' ')
		}
		return dst
	}
	return appendDigits(dst, v, width)
}

// FrameReader reads frames from a byte stream, whatever the stream's reads
// split or merge.
type FrameReader struct {
	br  *bufio.Reader
	max int
}

// NewFrameReader reads frames from r. A frame whose length field says more
// than maxLen (at most FrameLengthMax; 0 means FrameLengthMax) is an error.
func NewFrameReader(r io.Reader, maxLen int) *FrameReader {
	if maxLen <= 0 || maxLen > FrameLengthMax {
		maxLen = FrameLengthMax
	}
	return &FrameReader{br: bufio.NewReaderSize(r, FrameLengthMax+1), max: maxLen}
}

// Next returns the next frame. Its Raw is a copy the caller may keep. It
// returns io.EOF at a clean end of stream, io.ErrUnexpectedEOF when the
// stream ends inside a frame, a *FrameError for a malformed frame, or the
// stream's error.
func (r *FrameReader) Next() (Frame, error) {
	head, err := r.br.Peek(4)
	if err != nil {
		if err == io.EOF && len(head) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	n, ok := digits(head)
	if !ok {
		return Frame{}, r.frameError("length is not 4 digits")
	}
	if n < HeaderLen || n > r.max {
		return Frame{}, r.frameError(fmt.Sprintf("length %d is outside %d..%d", n, HeaderLen, r.max))
	}
	b, err := r.br.Peek(n + 1)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	raw := make([]byte, n+1)
	copy(raw, b)
	if _, err := r.br.Discard(n + 1); err != nil {
		return Frame{}, err
	}
	return DecodeFrame(raw)
}

func (r *FrameReader) frameError(reason string) error {
	head, _ := r.br.Peek(min(r.br.Buffered(), HeaderLen+4)) // what is there: never wait for more
	return &FrameError{Reason: reason, Head: append([]byte(nil), head...)}
}

// DecodeFrame decodes one whole frame, NUL included, and keeps b as its Raw.
// It returns a *FrameError if b is not exactly one well-formed frame.
func DecodeFrame(b []byte) (Frame, error) {
	fail := func(reason string) (Frame, error) {
		return Frame{}, &FrameError{Reason: reason, Head: append([]byte(nil), b[:min(len(b), HeaderLen+4)]...)}
	}
	if len(b) < HeaderLen+1 {
		return fail(fmt.Sprintf("%d bytes is shorter than a header", len(b)))
	}
	n, ok := digits(b[:4])
	if !ok {
		return fail("length is not 4 digits")
	}
	if n < HeaderLen || n+1 != len(b) {
		return fail(fmt.Sprintf("length %d does not match the %d bytes of the frame", n, len(b)-1))
	}
	if b[n] != 0 {
		return fail(fmt.Sprintf("byte %d is %q, not the NUL that ends a frame", n, b[n]))
	}
	for i, c := range b[:HeaderLen] {
		if c < 0x20 || c > 0x7e {
			return fail(fmt.Sprintf("header byte %d is 0x%02x, not printable ASCII", i, c))
		}
	}
	f := Frame{Raw: b, Data: b[HeaderLen:n]}
	if f.MID, ok = digits(b[4:8]); !ok || f.MID == 0 {
		return fail("MID is not 4 digits")
	}
	if f.Revision, ok = blankDigits(b[8:11]); !ok {
		return fail("revision is not 3 digits or spaces")
	}
	f.Revision = max(f.Revision, 1)
	switch b[11] {
	case '0', ' ':
	case '1':
		f.NoAck = true
	default:
		return fail(fmt.Sprintf("no-ack flag is %q", b[11]))
	}
	fields := []struct {
		dst      *int
		from, to int
		name     string
	}{
		{&f.Station, 12, 14, "station id"},
		{&f.Spindle, 14, 16, "spindle id"},
		{&f.Sequence, 16, 18, "sequence number"},
		{&f.Parts, 18, 19, "number of message parts"},
		{&f.Part, 19, 20, "message part number"},
	}
	for _, fl := range fields {
		if *fl.dst, ok = blankDigits(b[fl.from:fl.to]); !ok {
			return fail(fl.name + " is not digits or spaces")
		}
	}
	return f, nil
}

// digits parses b as unsigned decimal digits only.
func digits(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// blankDigits parses b as all spaces (0) or digits.
func blankDigits(b []byte) (int, bool) {
	blank := true
	for _, c := range b {
		if c != ' ' {
			blank = false
		}
	}
	if blank {
		return 0, true
	}
	return digits(b)
}

// midString formats a MID the way the specification names it: "MID 0061".
func midString(mid int) string { return "MID " + fmt.Sprintf("%04d", mid) }
