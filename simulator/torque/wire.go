package torque

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// headerSize is the Open Protocol header: length(4) MID(4) revision(3)
// no-ack(1) station(2) spindle(2) sequence(2) parts(1) part(1).
const headerSize = 20

// message is a frame as the simulator sees it.
type message struct {
	mid   int
	rev   int // 1 for a blank or 000 revision
	noAck bool
	data  string
}

// frame encodes a message: the header with blank station, spindle,
// sequence and parts fields, the data and the NUL.
func frame(mid, rev int, data string) []byte {
	var sb strings.Builder
	sb.Grow(headerSize + len(data) + 1)
	fmt.Fprintf(&sb, "%04d%04d%03d0        ", headerSize+len(data), mid, rev)
	sb.WriteString(data)
	sb.WriteByte(0)
	return []byte(sb.String())
}

// readMessage reads one frame. A frame that breaks the format is an error
// (the controller closes such a link).
func readMessage(r *bufio.Reader) (message, error) {
	var head [headerSize]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return message{}, err
	}
	n, err := strconv.Atoi(string(head[:4]))
	if err != nil || n < headerSize || n > 9999 {
		return message{}, fmt.Errorf("bad length field %q", head[:4])
	}
	rest := make([]byte, n-headerSize+1)
	if _, err := io.ReadFull(r, rest); err != nil {
		return message{}, err
	}
	if rest[len(rest)-1] != 0 {
		return message{}, fmt.Errorf("frame of length %d is not ended by NUL", n)
	}
	var m message
	if m.mid, err = strconv.Atoi(string(head[4:8])); err != nil {
		return message{}, fmt.Errorf("bad MID field %q", head[4:8])
	}
	rev := strings.TrimSpace(string(head[8:11]))
	if rev != "" {
		if m.rev, err = strconv.Atoi(rev); err != nil {
			return message{}, fmt.Errorf("bad revision field %q", head[8:11])
		}
	}
	m.rev = max(m.rev, 1)
	m.noAck = head[11] == '1'
	m.data = string(rest[:len(rest)-1])
	return m, nil
}

// params builds a data field: each value gets the next parameter id,
// starting at 01.
type params struct {
	sb strings.Builder
	id int
}

// num appends a number of width digits, zero-padded (negative values
// keep a leading minus); values too wide are clamped.
func (p *params) num(v int64, width int) *params {
	p.id++
	fmt.Fprintf(&p.sb, "%02d", p.id)
	limit := int64(1)
	for range width {
		limit *= 10
	}
	if v < 0 {
		fmt.Fprintf(&p.sb, "-%0*d", width-1, min(-v, limit/10-1))
	} else {
		fmt.Fprintf(&p.sb, "%0*d", width, min(v, limit-1))
	}
	return p
}

// text appends s left-aligned in width characters, space-padded.
func (p *params) text(s string, width int) *params {
	p.id++
	if len(s) > width {
		s = s[:width]
	}
	fmt.Fprintf(&p.sb, "%02d%-*s", p.id, width, s)
	return p
}

func (p *params) String() string { return p.sb.String() }
