package openprotocol

import (
	"bytes"
	"fmt"
	"time"
)

// TimeLayout is the controller's timestamp format, in its local time.
const TimeLayout = "2006-01-02:15:04:05"

// ParseError says which parameter of a message did not parse. It is
// ErrProtocol (errors.Is).
type ParseError struct {
	MID, Revision int
	// Param is the parameter id (0 for the data as a whole) and Name its
	// name in the specification.
	Param  int
	Name   string
	Reason string
}

func (e *ParseError) Error() string {
	if e.Param == 0 {
		return fmt.Sprintf("%s revision %d: %s", midString(e.MID), e.Revision, e.Reason)
	}
	return fmt.Sprintf("%s revision %d parameter %02d %s: %s", midString(e.MID), e.Revision, e.Param, e.Name, e.Reason)
}

// Unwrap makes errors.Is(err, ErrProtocol) true.
func (e *ParseError) Unwrap() error { return ErrProtocol }

// params reads the parameters of a data field in order: each is a 2-digit
// parameter id and a value of fixed length. The first problem is kept in
// err and every later read returns a zero value.
type params struct {
	data     []byte
	pos      int
	mid, rev int
	loc      *time.Location
	err      error
}

func (p *params) fail(id int, name, format string, args ...any) {
	if p.err == nil {
		p.err = &ParseError{MID: p.mid, Revision: p.rev, Param: id, Name: name, Reason: fmt.Sprintf(format, args...)}
	}
}

// more says whether the data holds another parameter.
func (p *params) more() bool { return p.err == nil && p.pos+2 <= len(p.data) }

// raw returns the value of parameter id, n bytes long.
func (p *params) raw(id, n int, name string) []byte {
	if p.err != nil {
		return nil
	}
	if p.pos+2+n > len(p.data) {
		p.fail(id, name, "the data ends at byte %d, before this %d-byte parameter", len(p.data), n)
		return nil
	}
	if got, ok := digits(p.data[p.pos : p.pos+2]); !ok || got != id {
		p.fail(id, name, "byte %d holds parameter id %q, want %02d", p.pos, p.data[p.pos:p.pos+2], id)
		return nil
	}
	v := p.data[p.pos+2 : p.pos+2+n]
	p.pos += 2 + n
	return v
}

// str returns a text parameter without its padding spaces.
func (p *params) str(id, n int, name string) string {
	return string(bytes.TrimSpace(p.raw(id, n, name)))
}

// num returns a numeric parameter: digits, padded with spaces, with an
// optional leading minus. A blank value is 0 unless required.
func (p *params) num(id, n int, name string, required bool) int64 {
	v := p.raw(id, n, name)
	if p.err != nil {
		return 0
	}
	// One pass: spaces, an optional minus, digits, spaces.
	i := 0
	for i < len(v) && v[i] == ' ' {
		i++
	}
	if i == len(v) {
		if required {
			p.fail(id, name, "is blank")
		}
		return 0
	}
	neg := v[i] == '-'
	if neg {
		i++
	}
	start, u := i, int64(0)
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		u = u*10 + int64(v[i]-'0')
	}
	ok := i > start
	for ; i < len(v); i++ {
		ok = ok && v[i] == ' '
	}
	if !ok {
		p.fail(id, name, "%q is not a number", v)
		return 0
	}
	if neg {
		return -u
	}
	return u
}

func (p *params) int(id, n int, name string) int { return int(p.num(id, n, name, false)) }

// centi returns a value the protocol sends multiplied by 100.
func (p *params) centi(id, n int, name string, required bool) float64 {
	return float64(p.num(id, n, name, required)) / 100
}

// uint32 returns an unsigned 32-bit parameter (tightening ids, bit sets).
func (p *params) uint32(id, n int, name string, required bool) uint32 {
	v := p.num(id, n, name, required)
	if p.err == nil && (v < 0 || v > 1<<32-1) {
		p.fail(id, name, "%d is outside 0..%d", v, uint32(1<<32-1))
		return 0
	}
	return uint32(v)
}

// time returns a timestamp in the controller's time zone. A blank or
// all-zero value is the zero time when optional.
func (p *params) time(id int, name string, required bool) time.Time {
	v := p.raw(id, len(TimeLayout), name)
	if p.err != nil {
		return time.Time{}
	}
	if !required && isZeroTime(v) {
		return time.Time{}
	}
	t, ok := parseStamp(v, p.loc)
	if !ok {
		p.fail(id, name, "%q is not a time YYYY-MM-DD:HH:MM:SS", v)
		return time.Time{}
	}
	return t
}

// parseStamp reads TimeLayout by hand (several times faster than
// time.ParseInLocation, and the client parses one or two a result).
func parseStamp(v []byte, loc *time.Location) (time.Time, bool) {
	if len(v) != len(TimeLayout) || v[4] != '-' || v[7] != '-' || v[10] != ':' || v[13] != ':' || v[16] != ':' {
		return time.Time{}, false
	}
	var n [6]int
	for i, at := range [6][2]int{{0, 4}, {5, 7}, {8, 10}, {11, 13}, {14, 16}, {17, 19}} {
		var ok bool
		if n[i], ok = digits(v[at[0]:at[1]]); !ok {
			return time.Time{}, false
		}
	}
	if n[1] < 1 || n[1] > 12 || n[2] < 1 || n[2] > 31 || n[3] > 23 || n[4] > 59 || n[5] > 59 {
		return time.Time{}, false
	}
	t := time.Date(n[0], time.Month(n[1]), n[2], n[3], n[4], n[5], 0, loc)
	if t.Day() != n[2] { // 31 April and the like
		return time.Time{}, false
	}
	return t, true
}

func isZeroTime(v []byte) bool {
	for _, c := range v {
		if c != ' ' && c != '0' && c != '-' && c != ':' {
			return false
		}
	}
	return true
}

// status returns a one-digit status parameter checked against its range.
func (p *params) status(id int, name string, maxV int) int {
	v := p.int(id, 1, name)
	if p.err == nil && (v < 0 || v > maxV) {
		p.fail(id, name, "%d is outside 0..%d", v, maxV)
	}
	return v
}

// Info is what the controller says of itself in MID 0002, communication
// start acknowledge. Fields beyond the revision's are zero.
type Info struct {
	// Revision of the MID 0002 (the revision the link runs at).
	Revision int
	// CellID, ChannelID and ControllerName: revision 1.
	CellID, ChannelID int
	ControllerName    string
	// SupplierCode: revision 2 (e.g. ACT for Atlas Copco).
	SupplierCode string
	// Versions: revision 3.
	OpenProtocolVersion, ControllerSoftwareVersion, ToolSoftwareVersion string
	// RBUType and ControllerSerial: revision 4.
	RBUType, ControllerSerial string
	// SystemType and SystemSubtype: revision 5.
	SystemType, SystemSubtype int
	// Revision 6: whether the controller supports header sequence numbers
	// and message linking.
	SequenceNumberSupport, LinkingHandlingSupport bool
	// StationID, StationName and ClientID, when the controller sends them
	// (parameters 14 to 16, later revisions).
	StationID   int
	StationName string
	ClientID    int
}

// parseInfo parses a MID 0002. It reads the parameters the data holds, in
// the order of the specification, so a controller that sends fewer or more
// than its revision says is still understood.
func parseInfo(f Frame) (Info, error) {
	p := &params{data: f.Data, mid: 2, rev: f.Revision}
	in := Info{Revision: f.Revision}
	in.CellID = p.int(1, 4, "cell ID")
	in.ChannelID = p.int(2, 2, "channel ID")
	in.ControllerName = p.str(3, 25, "controller name")
	steps := []func(){
		func() { in.SupplierCode = p.str(4, 3, "supplier code") },
		func() { in.OpenProtocolVersion = p.str(5, 19, "Open Protocol version") },
		func() { in.ControllerSoftwareVersion = p.str(6, 19, "controller software version") },
		func() { in.ToolSoftwareVersion = p.str(7, 19, "tool software version") },
		func() { in.RBUType = p.str(8, 24, "RBU type") },
		func() { in.ControllerSerial = p.str(9, 10, "controller serial number") },
		func() { in.SystemType = p.int(10, 3, "system type") },
		func() { in.SystemSubtype = p.int(11, 3, "system subtype") },
		func() { in.SequenceNumberSupport = p.int(12, 1, "sequence number support") == 1 },
		func() { in.LinkingHandlingSupport = p.int(13, 1, "linking handling support") == 1 },
		func() { in.StationID = p.int(14, 10, "station ID") },
		func() { in.StationName = p.str(15, 25, "station name") },
		func() { in.ClientID = p.int(16, 1, "client ID") },
	}
	for _, step := range steps {
		if !p.more() {
			break
		}
		step()
	}
	return in, p.err
}

// errorReply parses a MID 0004: the refused MID and the error code.
func errorReply(f Frame) (mid int, code ErrorCode, err error) {
	if len(f.Data) < 6 {
		return 0, 0, &ParseError{MID: 4, Revision: f.Revision, Reason: fmt.Sprintf("data %q is not a MID and an error code", f.Data)}
	}
	m, ok1 := digits(f.Data[:4])
	c, ok2 := digits(f.Data[4:6])
	if !ok1 || !ok2 {
		return 0, 0, &ParseError{MID: 4, Revision: f.Revision, Reason: fmt.Sprintf("data %q is not a MID and an error code", f.Data)}
	}
	return m, ErrorCode(c), nil
}

// acceptedMID parses a MID 0005: the accepted MID, 0 when the data is empty.
func acceptedMID(f Frame) (int, bool) {
	if len(bytes.TrimSpace(f.Data)) == 0 {
		return 0, true
	}
	if len(f.Data) < 4 {
		return 0, false
	}
	return digits(f.Data[:4])
}
