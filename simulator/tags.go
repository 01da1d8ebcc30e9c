package simulator

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
)

// The tags of docs/plc-tags.md as OPC UA variable nodes. All stations' tags
// live in one namespace (index 1) of one gopcua server; a client sees only
// the tags of the station whose endpoint it connected to.

// NamespaceURI is the URI of the namespace holding the station tags; the
// simulator registers it as namespace index 1.
const NamespaceURI = "urn:keiline:simulator"

// tagKind is the OPC UA data type of a tag.
type tagKind uint8

const (
	kindString tagKind = iota
	kindBool
	kindInt32
	kindUInt32
	kindInt64
	kindDouble
)

// dataType is the node id of the kind's OPC UA data type.
func (k tagKind) dataType() *ua.NodeID {
	switch k {
	case kindBool:
		return ua.NewNumericNodeID(0, id.Boolean)
	case kindInt32:
		return ua.NewNumericNodeID(0, id.Int32)
	case kindUInt32:
		return ua.NewNumericNodeID(0, id.UInt32)
	case kindInt64:
		return ua.NewNumericNodeID(0, id.Int64)
	case kindDouble:
		return ua.NewNumericNodeID(0, id.Double)
	default:
		return ua.NewNumericNodeID(0, id.String)
	}
}

// zero is the kind's zero value as the Go type a client reads.
func (k tagKind) zero() any {
	switch k {
	case kindBool:
		return false
	case kindInt32:
		return int32(0)
	case kindUInt32:
		return uint32(0)
	case kindInt64:
		return int64(0)
	case kindDouble:
		return float64(0)
	default:
		return ""
	}
}

// matches reports whether v has the kind's Go type.
func (k tagKind) matches(v any) bool {
	switch v.(type) {
	case string:
		return k == kindString
	case bool:
		return k == kindBool
	case int32:
		return k == kindInt32
	case uint32:
		return k == kindUInt32
	case int64:
		return k == kindInt64
	case float64:
		return k == kindDouble
	}
	return false
}

// tagSpec names a tag and its kind.
type tagSpec struct {
	Name string
	Kind tagKind
}

// Logical names of the station tags (docs/plc-tags.md).
const (
	TagHeartbeat    = "Heartbeat"
	TagState        = "State"
	TagFaultCode    = "FaultCode"
	TagFaultText    = "FaultText"
	TagAndon        = "Andon"
	TagStateCounter = "StateCounter"
	TagVinPresent   = "VinPresent"
	TagCycleCounter = "CycleCounter"
	TagDataReady    = "DataReady"
	TagAckCounter   = "AckCounter"
)

// headerTags are the station tags before the result block, in the order the
// plant publishes them. AckCounter is last: the MES writes it.
var headerTags = []tagSpec{
	{TagHeartbeat, kindInt32},
	{TagState, kindString},
	{TagFaultCode, kindInt32},
	{TagFaultText, kindString},
	{TagAndon, kindBool},
	{TagStateCounter, kindUInt32},
	{TagVinPresent, kindString},
	{TagCycleCounter, kindUInt32},
	{TagDataReady, kindBool},
	{TagAckCounter, kindUInt32},
}

// publishedHeader is the number of header tags the plant writes (all but
// AckCounter).
var publishedHeader = len(headerTags) - 1

// blockTags returns the result block's tags of a station with the given slot
// counts, in the order blockValues fills them.
func blockTags(parts, joints, tests int) []tagSpec {
	ts := []tagSpec{
		{"Result.Vin", kindString},
		{"Result.Model", kindString},
		{"Result.Variant", kindString},
		{"Result.Colour", kindString},
		{"Result.Status", kindString},
		{"Result.StartTime", kindInt64},
		{"Result.EndTime", kindInt64},
	}
	for n := 1; n <= parts; n++ {
		p := fmt.Sprintf("Part%d.", n)
		ts = append(ts, tagSpec{p + "PartNumber", kindString}, tagSpec{p + "Serial", kindString},
			tagSpec{p + "Lot", kindString}, tagSpec{p + "Supplier", kindString})
	}
	for n := 1; n <= joints; n++ {
		p := fmt.Sprintf("Joint%d.", n)
		ts = append(ts, tagSpec{p + "Name", kindString}, tagSpec{p + "Tool", kindString},
			tagSpec{p + "TorqueNm", kindDouble}, tagSpec{p + "AngleDeg", kindDouble}, tagSpec{p + "OK", kindBool})
	}
	for n := 1; n <= tests; n++ {
		p := fmt.Sprintf("Test%d.", n)
		ts = append(ts, tagSpec{p + "Name", kindString}, tagSpec{p + "Unit", kindString},
			tagSpec{p + "Value", kindDouble}, tagSpec{p + "Low", kindDouble}, tagSpec{p + "High", kindDouble},
			tagSpec{p + "OK", kindBool})
	}
	return ts
}

// blockResult is one result shown in a result block.
type blockResult struct {
	VIN, Model, Variant, Colour, Status string
	Start, End                          int64
	Res                                 *stationResult
}

// blockValues returns the values of a result block in blockTags order; a
// nil b gives the empty block.
func blockValues(parts, joints, tests int, b *blockResult) []any {
	if b == nil {
		b = &blockResult{Res: &stationResult{}}
	}
	vs := []any{b.VIN, b.Model, b.Variant, b.Colour, b.Status, b.Start, b.End}
	for n := 0; n < parts; n++ {
		var p Part
		if n < len(b.Res.Parts) {
			p = b.Res.Parts[n]
		}
		vs = append(vs, p.PartNumber, p.Serial, p.Lot, p.Supplier)
	}
	for n := 0; n < joints; n++ {
		var j Joint
		if n < len(b.Res.Joints) {
			j = b.Res.Joints[n]
		}
		var torque any = j.TorqueNm
		if slices.Contains(b.Res.unreadable, n) {
			torque = badReading{ua.StatusBadSensorFailure}
		}
		vs = append(vs, j.Name, j.Tool, torque, j.AngleDeg, j.OK)
	}
	for n := 0; n < tests; n++ {
		var t Test
		if n < len(b.Res.Tests) {
			t = b.Res.Tests[n]
		}
		vs = append(vs, t.Name, t.Unit, t.Value, t.Low, t.High, t.OK)
	}
	return vs
}

// badReading, given to set as a tag's value, makes the tag read with that
// bad status (a sensor fault) until it gets a value again.
type badReading struct{ code ua.StatusCode }

// tag is one variable node.
type tag struct {
	name     string // logical name
	id       *ua.NodeID
	browse   *ua.QualifiedName
	display  *ua.LocalizedText
	kind     tagKind
	writable bool
	pos      int // index in its station's tags
	value    any
	variant  *ua.Variant
	changed  time.Time
	// lastWrite numbers the last client write of a manifest tag (0: none).
	lastWrite uint64
	// bad, when not 0, is the status a Read of the value returns.
	bad ua.StatusCode
}

// stationTags are one station's tags; tags[0:len(headerTags)] are the
// header, then the result block, then (framing station in manifest mode)
// the manifest tags from manifestFrom on.
type stationTags struct {
	id     string
	folder *ua.NodeID
	tags   []*tag
	ackVal uint32 // last AckCounter written by a client
	ackSeq uint64 // number of AckCounter writes

	manifestFrom int        // index of the first manifest tag; 0: none
	writes       []tagWrite // manifest writes the plant has not taken yet
	writeSeq     uint64     // number of manifest writes
}

// tagWrite is a client's write of a manifest tag, applied by the plant loop.
type tagWrite struct {
	offset int // in manifestTags order
	value  any
	seq    uint64 // stationTags.writeSeq after the write
}

// tagSpace holds the tags of every station and implements server.NameSpace.
// It is safe for concurrent use.
type tagSpace struct {
	mu       sync.RWMutex
	ns       uint16
	stations []*stationTags
	byName   map[string]*tag // string node id ("W01.CycleCounter") -> tag
	owner    map[string]int  // string node id -> station index
	folders  map[string]int  // folder node id ("W01") -> station index

	connMu sync.Mutex
	conns  map[string]int // remote address of a proxied connection -> station
}

// newTagSpace makes the tags of the line's stations with zero values. With
// manifestSlots > 0 the framing station has that many manifest slots; with
// jis the stations have their JIS mode slot counts (stationSlots).
func newTagSpace(manifestSlots int, jis bool) *tagSpace {
	s := &tagSpace{
		ns:      1,
		byName:  make(map[string]*tag),
		owner:   make(map[string]int),
		folders: make(map[string]int),
		conns:   make(map[string]int),
	}
	now := time.Now()
	for i, def := range line {
		st := &stationTags{id: def.ID, folder: ua.NewStringNodeID(s.ns, def.ID)}
		s.folders[def.ID] = i
		parts, joints, tests := stationSlots(i, jis)
		specs := append(append([]tagSpec{}, headerTags...), blockTags(parts, joints, tests)...)
		if def.ID == framingStation && manifestSlots > 0 {
			st.manifestFrom = len(specs)
			specs = append(specs, manifestTags(manifestSlots)...)
		}
		for k, sp := range specs {
			name := def.ID + "." + sp.Name
			v := sp.Kind.zero()
			t := &tag{
				name:     sp.Name,
				id:       ua.NewStringNodeID(s.ns, name),
				browse:   &ua.QualifiedName{NamespaceIndex: s.ns, Name: sp.Name},
				display:  &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: sp.Name},
				kind:     sp.Kind,
				writable: sp.Name == TagAckCounter || st.manifestFrom > 0 && k > st.manifestFrom,
				pos:      k,
				value:    v,
				variant:  ua.MustVariant(v),
				changed:  now,
			}
			st.tags = append(st.tags, t)
			s.byName[name] = t
			s.owner[name] = i
		}
		s.stations = append(s.stations, st)
	}
	return s
}

// nodeIDs returns the logical tag names of station i mapped to node id
// strings such as "ns=1;s=W01.CycleCounter".
func (s *tagSpace) nodeIDs(i int) map[string]string {
	m := make(map[string]string, len(s.stations[i].tags))
	for _, t := range s.stations[i].tags {
		m[t.name] = t.id.String()
	}
	return m
}

// segment is a run of values for a station's tags starting at tag index
// from. A manifest tag written by a client after the write numbered
// applied keeps the client's value: the plant has not taken that write yet.
type segment struct {
	from    int
	vals    []any
	applied uint64
}

// set publishes segments of values to station i's tags, in the order given
// and under one lock, so no Read sees some of them without the others. It
// appends the node ids whose value changed to changed. A value of the wrong
// type is a bug in the plant and panics.
func (s *tagSpace) set(i int, now time.Time, changed []*ua.NodeID, segs ...segment) []*ua.NodeID {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sg := range segs {
		tags := s.stations[i].tags[sg.from:]
		for k, v := range sg.vals {
			t := tags[k]
			if br, ok := v.(badReading); ok {
				if t.bad != br.code {
					t.bad, t.changed = br.code, now
					changed = append(changed, t.id)
				}
				continue
			}
			if (t.value == v && t.bad == 0) || t.lastWrite > sg.applied {
				continue
			}
			t.bad = 0
			if !t.kind.matches(v) {
				panic(fmt.Sprintf("simulator: tag %s: value %v of type %T", t.id, v, v))
			}
			t.value = v
			t.variant = ua.MustVariant(v)
			t.changed = now
			changed = append(changed, t.id)
		}
	}
	return changed
}

// ack returns the last AckCounter value written to station i and the
// number of writes so far.
func (s *tagSpace) ack(i int) (uint32, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.stations[i]
	return st.ackVal, st.ackSeq
}

// value returns the current value of station i's tag (tests).
func (s *tagSpace) value(i int, name string) any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byName[line[i].ID+"."+name].value
}

// bindConn records that the proxied connection with the given remote
// address (as the server sees it) belongs to station i.
func (s *tagSpace) bindConn(addr string, i int) {
	s.connMu.Lock()
	s.conns[addr] = i
	s.connMu.Unlock()
}

func (s *tagSpace) unbindConn(addr string) {
	s.connMu.Lock()
	delete(s.conns, addr)
	s.connMu.Unlock()
}

// Who may see a tag, besides a station index.
const (
	// anyStation is gopcua's own calls (monitored items), which know no
	// connection: they see every station's tags.
	anyStation = -1
	// noStation is a connection that did not come through a station
	// endpoint (one made straight to the core's port): it sees no tags.
	noStation = -2
)

// connStation returns the station of a connection, or noStation.
func (s *tagSpace) connStation(addr string) int {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if i, ok := s.conns[addr]; ok {
		return i
	}
	return noStation
}

// visible reports whether a connection of station st may see station i.
func visible(st, i int) bool {
	return st == anyStation || st == i
}

// lookup returns the tag with node id nid if station st may see it. The
// caller holds s.mu.
func (s *tagSpace) lookup(nid *ua.NodeID, st int) *tag {
	if nid == nil || nid.Namespace() != s.ns || nid.Type() != ua.NodeIDTypeString {
		return nil
	}
	name := nid.StringID()
	t := s.byName[name]
	if t == nil || !visible(st, s.owner[name]) {
		return nil
	}
	return t
}

// folderOf returns the station index of a folder node id station st may
// see, or -1.
func (s *tagSpace) folderOf(nid *ua.NodeID, st int) int {
	if nid == nil || nid.Namespace() != s.ns || nid.Type() != ua.NodeIDTypeString {
		return -1
	}
	i, ok := s.folders[nid.StringID()]
	if !ok || !visible(st, i) {
		return -1
	}
	return i
}

func badValue(code ua.StatusCode, now time.Time) *ua.DataValue {
	return &ua.DataValue{
		EncodingMask:    ua.DataValueStatusCode | ua.DataValueServerTimestamp,
		Status:          code,
		ServerTimestamp: now,
	}
}

func goodValue(v any, now time.Time) *ua.DataValue {
	return &ua.DataValue{
		EncodingMask:    ua.DataValueValue | ua.DataValueServerTimestamp,
		Value:           ua.MustVariant(v),
		ServerTimestamp: now,
	}
}

// attribute reads one attribute of a node station st may see. The caller
// holds s.mu for reading.
func (s *tagSpace) attribute(nid *ua.NodeID, attr ua.AttributeID, st int, now time.Time) *ua.DataValue {
	if t := s.lookup(nid, st); t != nil {
		return s.tagAttribute(t, attr, now)
	}
	if i := s.folderOf(nid, st); i >= 0 {
		return s.folderAttribute(i, attr, now)
	}
	return badValue(ua.StatusBadNodeIDUnknown, now)
}

func (s *tagSpace) tagAttribute(t *tag, attr ua.AttributeID, now time.Time) *ua.DataValue {
	switch attr {
	case ua.AttributeIDValue:
		if t.bad != 0 {
			return badValue(t.bad, now)
		}
		return &ua.DataValue{
			EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
			Value:           t.variant,
			SourceTimestamp: t.changed,
			ServerTimestamp: now,
		}
	case ua.AttributeIDNodeID:
		return goodValue(t.id, now)
	case ua.AttributeIDNodeClass:
		return goodValue(int32(ua.NodeClassVariable), now)
	case ua.AttributeIDBrowseName:
		return goodValue(t.browse, now)
	case ua.AttributeIDDisplayName:
		return goodValue(t.display, now)
	case ua.AttributeIDDescription:
		return goodValue(&ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: t.id.StringID()}, now)
	case ua.AttributeIDDataType:
		return goodValue(t.kind.dataType(), now)
	case ua.AttributeIDValueRank:
		return goodValue(int32(-1), now) // scalar
	case ua.AttributeIDAccessLevel, ua.AttributeIDUserAccessLevel:
		return goodValue(t.accessLevel(), now)
	case ua.AttributeIDMinimumSamplingInterval:
		return goodValue(float64(0), now)
	case ua.AttributeIDHistorizing:
		return goodValue(false, now)
	case ua.AttributeIDWriteMask, ua.AttributeIDUserWriteMask:
		return goodValue(uint32(0), now)
	}
	return badValue(ua.StatusBadAttributeIDInvalid, now)
}

func (t *tag) accessLevel() byte {
	a := byte(ua.AccessLevelTypeCurrentRead)
	if t.writable {
		a |= byte(ua.AccessLevelTypeCurrentWrite)
	}
	return a
}

func (s *tagSpace) folderAttribute(i int, attr ua.AttributeID, now time.Time) *ua.DataValue {
	st := s.stations[i]
	switch attr {
	case ua.AttributeIDNodeID:
		return goodValue(st.folder, now)
	case ua.AttributeIDNodeClass:
		return goodValue(int32(ua.NodeClassObject), now)
	case ua.AttributeIDBrowseName:
		return goodValue(&ua.QualifiedName{NamespaceIndex: s.ns, Name: st.id}, now)
	case ua.AttributeIDDisplayName:
		return goodValue(&ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: st.id}, now)
	case ua.AttributeIDDescription:
		return goodValue(&ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: line[i].Name}, now)
	case ua.AttributeIDEventNotifier:
		return goodValue(byte(0), now)
	case ua.AttributeIDWriteMask, ua.AttributeIDUserWriteMask:
		return goodValue(uint32(0), now)
	}
	return badValue(ua.StatusBadAttributeIDInvalid, now)
}

// write writes one value for station st. Only AckCounter (a UInt32) and
// the framing station's manifest slots (Seq an Int64 of 0 or more, the rest
// strings of at most manifestStringMax bytes) are writable.
func (s *tagSpace) write(wv *ua.WriteValue, st int, now time.Time) ua.StatusCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.lookup(wv.NodeID, st)
	if t == nil {
		if s.folderOf(wv.NodeID, st) >= 0 {
			return ua.StatusBadNotWritable
		}
		return ua.StatusBadNodeIDUnknown
	}
	if wv.AttributeID != ua.AttributeIDValue || !t.writable {
		return ua.StatusBadNotWritable
	}
	if wv.IndexRange != "" {
		return ua.StatusBadIndexRangeInvalid
	}
	if wv.Value == nil || wv.Value.Value == nil {
		return ua.StatusBadTypeMismatch
	}
	if t.name != TagAckCounter {
		return s.writeManifest(t, wv.NodeID.StringID(), wv.Value.Value.Value(), now)
	}
	v, ok := wv.Value.Value.Value().(uint32)
	if !ok {
		return ua.StatusBadTypeMismatch
	}
	t.value = v
	t.variant = ua.MustVariant(v)
	t.changed = now
	owner := s.owner[wv.NodeID.StringID()]
	s.stations[owner].ackVal = v
	s.stations[owner].ackSeq++
	return ua.StatusOK
}

// writeManifest writes v into manifest tag t (node id string name) and
// queues the write for the plant loop. The caller holds s.mu.
func (s *tagSpace) writeManifest(t *tag, name string, v any, now time.Time) ua.StatusCode {
	if !t.kind.matches(v) {
		return ua.StatusBadTypeMismatch
	}
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return ua.StatusBadOutOfRange
		}
	case string:
		if len(v) > manifestStringMax {
			return ua.StatusBadOutOfRange
		}
	}
	st := s.stations[s.owner[name]]
	if st.manifestFrom == 0 || t.pos <= st.manifestFrom {
		return ua.StatusBadNotWritable // cannot happen: only slot tags are writable
	}
	if len(st.writes) >= manifestWritesMax {
		return ua.StatusBadResourceUnavailable // the plant loop is not taking them (halted)
	}
	st.writeSeq++
	st.writes = append(st.writes, tagWrite{offset: t.pos - st.manifestFrom, value: v, seq: st.writeSeq})
	t.value = v
	t.variant = ua.MustVariant(v)
	t.changed = now
	t.lastWrite = st.writeSeq
	return ua.StatusOK
}

// takeWrites returns and forgets the manifest writes to station i the plant
// has not taken yet, in the order the clients made them.
func (s *tagSpace) takeWrites(i int) []tagWrite {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stations[i]
	w := st.writes
	st.writes = nil
	return w
}

// manifestFrom returns the index of station i's first manifest tag, 0 if it
// has none.
func (s *tagSpace) manifestFrom(i int) int {
	return s.stations[i].manifestFrom
}

// browse lists the references of a station folder: one HasComponent
// reference to each tag. The caller holds s.mu for reading.
func (s *tagSpace) browse(bd *ua.BrowseDescription, st int) *ua.BrowseResult {
	if s.lookup(bd.NodeID, st) != nil {
		return &ua.BrowseResult{StatusCode: ua.StatusOK, References: []*ua.ReferenceDescription{}}
	}
	i := s.folderOf(bd.NodeID, st)
	if i < 0 {
		return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
	}
	refs := []*ua.ReferenceDescription{}
	if bd.BrowseDirection != ua.BrowseDirectionInverse &&
		refTypeMatches(bd, id.HasComponent, id.Aggregates, id.HasChild, id.HierarchicalReferences, id.References) &&
		(bd.NodeClassMask == 0 || bd.NodeClassMask&uint32(ua.NodeClassVariable) != 0) {
		for _, t := range s.stations[i].tags {
			refs = append(refs, &ua.ReferenceDescription{
				ReferenceTypeID: ua.NewNumericNodeID(0, id.HasComponent),
				IsForward:       true,
				NodeID:          ua.NewExpandedNodeID(t.id, "", 0),
				BrowseName:      t.browse,
				DisplayName:     t.display,
				NodeClass:       ua.NodeClassVariable,
				TypeDefinition:  ua.NewNumericExpandedNodeID(0, id.BaseDataVariableType),
			})
		}
	}
	return &ua.BrowseResult{StatusCode: ua.StatusOK, References: refs}
}

// folderRef is the Organizes reference from the Objects folder to station
// i's folder.
func (s *tagSpace) folderRef(i int) *ua.ReferenceDescription {
	st := s.stations[i]
	return &ua.ReferenceDescription{
		ReferenceTypeID: ua.NewNumericNodeID(0, id.Organizes),
		IsForward:       true,
		NodeID:          ua.NewExpandedNodeID(st.folder, "", 0),
		BrowseName:      &ua.QualifiedName{NamespaceIndex: s.ns, Name: st.id},
		DisplayName:     &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: st.id},
		NodeClass:       ua.NodeClassObject,
		TypeDefinition:  ua.NewNumericExpandedNodeID(0, id.FolderType),
	}
}

// refTypeMatches reports whether a reference of type want (the first of
// types) is asked for: no type given, or want itself, or (with subtypes)
// one of its super types (the rest of types).
func refTypeMatches(bd *ua.BrowseDescription, types ...uint32) bool {
	rt := bd.ReferenceTypeID
	if rt == nil || (rt.Namespace() == 0 && rt.IntID() == 0) {
		return true
	}
	if rt.Namespace() != 0 {
		return false
	}
	if rt.IntID() == types[0] {
		return true
	}
	if !bd.IncludeSubtypes {
		return false
	}
	for _, t := range types[1:] {
		if rt.IntID() == t {
			return true
		}
	}
	return false
}

// The server.NameSpace interface. The gopcua server calls these for
// monitored items and the namespace array; reads, writes and browses from
// clients go through the handlers in server.go, which know the station.

func (s *tagSpace) Name() string                        { return NamespaceURI }
func (s *tagSpace) AddNode(n *server.Node) *server.Node { return n }
func (s *tagSpace) Node(*ua.NodeID) *server.Node        { return nil }
func (s *tagSpace) Objects() *server.Node               { return nil }
func (s *tagSpace) Root() *server.Node                  { return nil }
func (s *tagSpace) ID() uint16                          { return s.ns }

// SetID is called by the server when it registers the namespace; the
// namespace must be registered as index 1.
func (s *tagSpace) SetID(ns uint16) {
	if ns != s.ns {
		panic(fmt.Sprintf("simulator: tag namespace registered as %d, want %d", ns, s.ns))
	}
}

func (s *tagSpace) Browse(bd *ua.BrowseDescription) *ua.BrowseResult {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.browse(bd, anyStation)
}

func (s *tagSpace) Attribute(nid *ua.NodeID, attr ua.AttributeID) *ua.DataValue {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.attribute(nid, attr, anyStation, time.Now())
}

func (s *tagSpace) SetAttribute(*ua.NodeID, ua.AttributeID, *ua.DataValue) ua.StatusCode {
	return ua.StatusBadNotWritable
}
