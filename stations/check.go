package stations

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/line"
)

// CheckParallelDefault is how many PLCs CheckLine checks at once.
const CheckParallelDefault = 8

// CheckProblem is one thing wrong between a station's config and its PLC:
// a node that is missing, of a type its tag does not convert from or
// without the access the agent needs, or a PLC that cannot be reached.
type CheckProblem struct {
	Station  string
	Endpoint string
	// Path and Line locate the tag (or the station, for a problem with the
	// connection) in the line config file; empty and 0 when not known.
	Path string
	Line int
	// Tag and Node are the logical tag and where its value comes from;
	// both empty for a problem with the connection.
	Tag  string
	Node string
	// Message says what is wrong and what is wanted.
	Message string
}

func (p CheckProblem) String() string {
	at := ""
	if p.Path != "" && p.Line > 0 {
		at = fmt.Sprintf("%s:%d: ", p.Path, p.Line)
	}
	if p.Tag == "" {
		return fmt.Sprintf("%sstation %s: plc %s: %s", at, p.Station, p.Endpoint, p.Message)
	}
	return fmt.Sprintf("%sstation %s: tag %s: node %s: %s", at, p.Station, p.Tag, p.Node, p.Message)
}

// nodeInfo is what the checks and the browser read about a node.
type nodeInfo struct {
	class       ua.NodeClass
	classStatus ua.StatusCode
	dataType    *ua.NodeID // nil when not readable
	valueRank   int32
	rankKnown   bool
	access      byte
	accessKnown bool
	user        byte
	userKnown   bool
	value       *ua.DataValue
}

// nodeAttributes are the attributes readNodeInfo reads, in its order.
var nodeAttributes = []ua.AttributeID{
	ua.AttributeIDNodeClass, ua.AttributeIDDataType, ua.AttributeIDValueRank,
	ua.AttributeIDAccessLevel, ua.AttributeIDUserAccessLevel, ua.AttributeIDValue,
}

// readNodeInfo reads the class, data type, value rank, access levels and
// (withValue) the value of each node, in batched Reads.
func readNodeInfo(ctx context.Context, plc *PLC, nodes []*ua.NodeID, withValue bool) ([]nodeInfo, error) {
	attrs := nodeAttributes
	if !withValue {
		attrs = attrs[:len(attrs)-1]
	}
	rvs := make([]*ua.ReadValueID, 0, len(nodes)*len(attrs))
	for _, n := range nodes {
		for _, a := range attrs {
			rvs = append(rvs, &ua.ReadValueID{NodeID: n, AttributeID: a})
		}
	}
	dvs, err := plc.readValues(ctx, rvs)
	if err != nil {
		return nil, err
	}
	out := make([]nodeInfo, len(nodes))
	for i := range nodes {
		row := dvs[i*len(attrs) : (i+1)*len(attrs)]
		ni := &out[i]
		ni.classStatus = row[0].Status
		if v, ok := good(row[0]); ok {
			switch c := v.(type) {
			case int32:
				ni.class = ua.NodeClass(c)
			case uint32:
				ni.class = ua.NodeClass(c)
			}
		}
		if v, ok := good(row[1]); ok {
			ni.dataType, _ = v.(*ua.NodeID)
		}
		if v, ok := good(row[2]); ok {
			ni.valueRank, ni.rankKnown = v.(int32)
		}
		if v, ok := good(row[3]); ok {
			ni.access, ni.accessKnown = v.(byte)
		}
		if v, ok := good(row[4]); ok {
			ni.user, ni.userKnown = v.(byte)
		}
		if withValue {
			ni.value = row[5]
		}
	}
	return out, nil
}

// good returns a DataValue's value when its status is good.
func good(dv *ua.DataValue) (any, bool) {
	if dv == nil || dv.Status != ua.StatusOK || dv.Value == nil {
		return nil, false
	}
	v := dv.Value.Value()
	return v, v != nil
}

// CheckStation connects to station st's PLC and checks every node of its
// tag map: that the node exists, is a variable (an array when the tag
// gives an index, with that element; a scalar otherwise) of a data type
// the tag's value converts from without loss (through its map, when it has
// one), can be read, and for AckCounter and the manifest slots can be
// written by the session's user. It returns every problem found, each
// with the config line of its tag; a PLC that cannot be reached or
// refuses the connection is one problem naming the endpoint.
func CheckStation(ctx context.Context, lc *line.Config, st *line.Station) []CheckProblem {
	conn := ConnectionOf(lc, st)
	plc, err := DialPLC(ctx, conn)
	if err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, conn.where()+": ")
		return []CheckProblem{{Station: st.ID, Endpoint: st.Endpoint, Path: lc.Path(), Line: st.Line(), Message: msg}}
	}
	defer plc.Close(ctx)
	var tags []string
	var nodes []*ua.NodeID
	for _, t := range st.Tags() {
		tag := st.Nodes[t]
		if n, _, ok := tag.ReadID(); ok {
			tags, nodes = append(tags, t), append(nodes, n)
		}
	}
	infos, err := readNodeInfo(ctx, plc, nodes, true)
	if err != nil {
		err = readLimitHint(ctx, err, plc, lc, st)
		return []CheckProblem{{Station: st.ID, Endpoint: st.Endpoint, Path: lc.Path(), Line: st.Line(), Message: fmt.Sprintf("read the nodes' attributes: %v", err)}}
	}
	var probs []CheckProblem
	ackNode := nodes[slices.Index(tags, "AckCounter")].String()
	for i, tag := range tags {
		t := st.Nodes[tag]
		at := t.Line()
		if at == 0 {
			at = st.Line() // a tag of the node pattern: the station's line
		}
		add := func(format string, a ...any) {
			probs = append(probs, CheckProblem{Station: st.ID, Endpoint: st.Endpoint, Path: lc.Path(), Line: at, Tag: tag, Node: t.Where(), Message: fmt.Sprintf(format, a...)})
		}
		if tag != "AckCounter" && nodes[i].String() == ackNode {
			add("shares the AckCounter node: the agent writes that node to acknowledge a cycle, so no other tag may use it")
		}
		for _, m := range checkNode(tag, &t, &infos[i]) {
			add("%s", m)
		}
	}
	return probs
}

// checkNode returns what is wrong with the node of tag.
func checkNode(tag string, t *line.Tag, ni *nodeInfo) []string {
	if ni.classStatus == ua.StatusBadNodeIDUnknown || ni.classStatus == ua.StatusBadNodeIDInvalid {
		return []string{fmt.Sprintf("does not exist (%s); `keiline plc browse` lists the PLC's nodes", statusName(ni.classStatus))}
	}
	if ni.classStatus != ua.StatusOK {
		return []string{fmt.Sprintf("cannot be read (%s)", statusName(ni.classStatus))}
	}
	if ni.class != ua.NodeClassVariable {
		return []string{fmt.Sprintf("is not a variable but of node class %s", nodeClassName(ni.class))}
	}
	var out []string
	switch {
	case t.Index == nil && ni.rankKnown && ni.valueRank != -1:
		out = append(out, fmt.Sprintf("is an array (value rank %d): give the element with index: (0-based)", ni.valueRank))
	case t.Index != nil && ni.rankKnown && ni.valueRank == -1:
		out = append(out, fmt.Sprintf("is a scalar, but the tag gives index %d: drop the index", *t.Index))
	case t.Index != nil && ni.value != nil && ni.value.Status == ua.StatusOK && ni.value.Value != nil && int(ni.value.Value.ArrayLength()) <= *t.Index:
		out = append(out, fmt.Sprintf("has %d elements, index %d is beyond them (indexes are 0-based)", ni.value.Value.ArrayLength(), *t.Index))
	}
	if m := checkType(tag, t, ni); m != "" {
		out = append(out, m)
	}
	level, which := ni.access, "access level"
	if ni.userKnown {
		level, which = ni.user, "user access level"
	}
	if ni.accessKnown || ni.userKnown {
		if level&byte(ua.AccessLevelTypeCurrentRead) == 0 {
			out = append(out, fmt.Sprintf("not readable (%s: %s)", which, accessString(level)))
		}
		if tag == "AckCounter" && level&byte(ua.AccessLevelTypeCurrentWrite) == 0 {
			out = append(out, fmt.Sprintf("not writable (%s: %s); the agent writes AckCounter to acknowledge a cycle", which, accessString(level)))
		}
		if manifestWritten(tag) && level&byte(ua.AccessLevelTypeCurrentWrite) == 0 {
			out = append(out, fmt.Sprintf("not writable (%s: %s); the agent writes the manifest slots the tracker downloads", which, accessString(level)))
		}
	}
	if ni.value != nil && ni.value.Status != ua.StatusOK && ni.value.Status != ua.StatusBadNotReadable && ni.value.Status != ua.StatusBadUserAccessDenied {
		out = append(out, fmt.Sprintf("value has bad quality now (%s)", statusName(ni.value.Status)))
	}
	return out
}

// manifestWritten reports whether the MES writes tag: a manifest slot's
// tags (not Manifest.LastSeq, which the PLC writes).
func manifestWritten(tag string) bool {
	return strings.HasPrefix(tag, "Manifest") && tag != line.ManifestLastSeq
}

// checkType checks the node's data type against what tag needs: a type
// its value converts from without loss, through the tag's map when it has
// one (whose keys must then be values of that type).
func checkType(tag string, t *line.Tag, ni *nodeInfo) string {
	if ni.dataType == nil {
		return ""
	}
	bt, builtin := builtinType(ni.dataType)
	if !builtin {
		// A vendor or derived type: judge by the value it holds now.
		if ni.value == nil || ni.value.Status != ua.StatusOK {
			return ""
		}
		if _, reason := convertTag(tag, t, ni.value); reason != "" {
			return fmt.Sprintf("data type %s: %s", ni.dataType, reason)
		}
		return ""
	}
	isInt := bt >= id.SByte && bt <= id.UInt64 || bt == id.Integer || bt == id.UInteger
	isNum := isInt || bt == id.Float || bt == id.Double || bt == id.Number
	name := dataTypeName(ni.dataType)
	if t.Map != nil {
		for k := range t.Map {
			switch {
			case isInt:
				if _, err := strconv.ParseInt(k, 10, 64); err != nil {
					return fmt.Sprintf("data type %s, but map key %q is not an integer: no value of the node would match it", name, k)
				}
			case bt == id.Boolean:
				if k != "true" && k != "false" {
					return fmt.Sprintf("data type Boolean, but map key %q is not true or false", k)
				}
			case bt != id.String && !isNum:
				return fmt.Sprintf("data type %s cannot be mapped; want an integer, Boolean or String node", name)
			}
		}
		return ""
	}
	var ok bool
	var want string
	switch line.KindOf(tag) {
	case line.KindString:
		ok, want = bt == id.String || isInt, "String or an integer type (a body number)"
	case line.KindBool:
		ok, want = bt == id.Boolean, "Boolean (or give a map for a code: {map: {1: true, 2: false}})"
	case line.KindInt:
		ok, want = isInt, "an integer type (SByte to UInt64); a Float or Double would lose its fraction"
	case line.KindFloat:
		ok, want = isNum, "a number (Double, Float or an integer type, with a scale: for units such as 0.01 N·m)"
	}
	if tag == "AckCounter" {
		want = "an integer type: the agent writes AckCounter in the node's own type"
	}
	if manifestWritten(tag) && line.KindOf(tag) == line.KindString {
		ok, want = bt == id.String, "String (the agent writes the manifest slot's text)"
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("data type %s, want %s", name, want)
}

// AbsentTags lists the station's absent tags with what keiline does
// instead, for the integrator to read.
func AbsentTags(st *line.Station) []string {
	var out []string
	for _, tag := range st.Tags() {
		t := st.Nodes[tag]
		if t.Absent {
			instead, _ := line.OptionalTag(tag)
			out = append(out, tag+": "+instead)
		}
	}
	return out
}

// builtinType maps a data type node id to the built-in type it is or
// derives from (Duration is a Double, UtcTime a DateTime, Counter a
// UInt32, ...). It reports false for types it does not know.
func builtinType(dt *ua.NodeID) (uint32, bool) {
	if dt == nil {
		return 0, false
	}
	if dt.Namespace() != 0 || dt.Type() != ua.NodeIDTypeTwoByte && dt.Type() != ua.NodeIDTypeFourByte && dt.Type() != ua.NodeIDTypeNumeric {
		return 0, false
	}
	switch n := dt.IntID(); n {
	case id.Duration:
		return id.Double, true
	case id.UtcTime:
		return id.DateTime, true
	case id.Counter, id.IntegerID, id.Index:
		return id.UInt32, true
	case id.LocaleID, id.NumericRange:
		return id.String, true
	default:
		if n >= id.Boolean && n <= id.DiagnosticInfo || n == id.Number || n == id.Integer || n == id.UInteger {
			return n, true
		}
	}
	return 0, false
}

// dataTypeName is a data type's name (UInt32), or its node id when it is
// not a built-in type.
func dataTypeName(dt *ua.NodeID) string {
	if dt == nil {
		return "?"
	}
	if dt.Namespace() == 0 {
		if name, ok := dataTypeNames[dt.IntID()]; ok {
			return name
		}
	}
	return dt.String()
}

var dataTypeNames = map[uint32]string{
	id.Boolean: "Boolean", id.SByte: "SByte", id.Byte: "Byte", id.Int16: "Int16", id.UInt16: "UInt16",
	id.Int32: "Int32", id.UInt32: "UInt32", id.Int64: "Int64", id.UInt64: "UInt64", id.Float: "Float",
	id.Double: "Double", id.String: "String", id.DateTime: "DateTime", id.GUID: "Guid", id.ByteString: "ByteString",
	id.XMLElement: "XmlElement", id.NodeID: "NodeId", id.ExpandedNodeID: "ExpandedNodeId", id.StatusCode: "StatusCode",
	id.QualifiedName: "QualifiedName", id.LocalizedText: "LocalizedText", id.Structure: "Structure",
	id.DataValue: "DataValue", id.BaseDataType: "BaseDataType", id.DiagnosticInfo: "DiagnosticInfo",
	id.Number: "Number", id.Integer: "Integer", id.UInteger: "UInteger", id.Enumeration: "Enumeration",
	id.Duration: "Duration", id.UtcTime: "UtcTime", id.Counter: "Counter", id.IntegerID: "IntegerId",
	id.Index: "Index", id.LocaleID: "LocaleId", id.NumericRange: "NumericRange",
}

// accessString shows an access level byte: read, write, read/write, none.
func accessString(a byte) string {
	var parts []string
	if a&byte(ua.AccessLevelTypeCurrentRead) != 0 {
		parts = append(parts, "read")
	}
	if a&byte(ua.AccessLevelTypeCurrentWrite) != 0 {
		parts = append(parts, "write")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "/")
}

// CheckLine checks the given stations (every station when ids is empty),
// up to CheckParallelDefault PLCs at a time, and returns all problems in
// line order. It fails only for a station id that is not in the config.
func CheckLine(ctx context.Context, lc *line.Config, ids []string) ([]CheckProblem, error) {
	var sts []*line.Station
	if len(ids) == 0 {
		for i := range lc.Stations {
			sts = append(sts, &lc.Stations[i])
		}
	}
	for _, id := range ids {
		st, ok := lc.Station(id)
		if !ok {
			return nil, fmt.Errorf("station %q is not in the line config", id)
		}
		sts = append(sts, st)
	}
	results := make([][]CheckProblem, len(sts))
	sem := make(chan struct{}, CheckParallelDefault)
	var wg sync.WaitGroup
	for i, st := range sts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = CheckStation(ctx, lc, st)
		})
	}
	wg.Wait()
	return slices.Concat(results...), nil
}
