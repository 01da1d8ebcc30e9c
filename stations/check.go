package stations

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/line"
)

// CheckParallelDefault is how many PLCs CheckLine checks at once.
const CheckParallelDefault = 8

// CheckProblem is one thing wrong between a station's config and its PLC:
// a node that is missing, of the wrong type or without the access the agent
// needs, or a PLC that cannot be reached.
type CheckProblem struct {
	Station  string
	Endpoint string
	// Tag and Node are the logical tag and its node id; both empty for a
	// problem with the connection.
	Tag  string
	Node string
	// Message says what is wrong and what is wanted.
	Message string
}

func (p CheckProblem) String() string {
	if p.Tag == "" {
		return fmt.Sprintf("station %s: plc %s: %s", p.Station, p.Endpoint, p.Message)
	}
	return fmt.Sprintf("station %s: tag %s: node %s: %s", p.Station, p.Tag, p.Node, p.Message)
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
// tag map: that the node exists, is a scalar variable of a data type the
// tag's value converts from (UInt32 for AckCounter, which the agent
// writes), can be read, and for AckCounter can be written by the session's
// user. It returns every problem found, one per node and kind; a PLC that
// cannot be reached or refuses the connection is one problem naming the
// endpoint.
func CheckStation(ctx context.Context, lc *line.Config, st *line.Station) []CheckProblem {
	conn := ConnectionOf(lc, st)
	plc, err := DialPLC(ctx, conn)
	if err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, conn.where()+": ")
		return []CheckProblem{{Station: st.ID, Endpoint: st.Endpoint, Message: msg}}
	}
	defer plc.Close(ctx)
	tags := st.Tags()
	nodes := make([]*ua.NodeID, len(tags))
	for i, t := range tags {
		nodes[i], _ = ua.ParseNodeID(st.Nodes[t]) // the config is validated
	}
	infos, err := readNodeInfo(ctx, plc, nodes, true)
	if err != nil {
		return []CheckProblem{{Station: st.ID, Endpoint: st.Endpoint, Message: fmt.Sprintf("read the nodes' attributes: %v", err)}}
	}
	var probs []CheckProblem
	first := map[string]string{} // node id -> first tag mapped to it
	for i, tag := range tags {
		node := st.Nodes[tag]
		add := func(format string, a ...any) {
			probs = append(probs, CheckProblem{Station: st.ID, Endpoint: st.Endpoint, Tag: tag, Node: node, Message: fmt.Sprintf(format, a...)})
		}
		key := nodes[i].String()
		if other, dup := first[key]; dup {
			add("same node as tag %s; every tag needs a node of its own", other)
			continue
		}
		first[key] = tag
		for _, m := range checkNode(tag, &infos[i]) {
			add("%s", m)
		}
	}
	return probs
}

// checkNode returns what is wrong with the node of tag.
func checkNode(tag string, ni *nodeInfo) []string {
	if ni.classStatus == ua.StatusBadNodeIDUnknown || ni.classStatus == ua.StatusBadNodeIDInvalid {
		return []string{fmt.Sprintf("does not exist (%s)", statusName(ni.classStatus))}
	}
	if ni.classStatus != ua.StatusOK {
		return []string{fmt.Sprintf("cannot be read (%s)", statusName(ni.classStatus))}
	}
	if ni.class != ua.NodeClassVariable {
		return []string{fmt.Sprintf("is not a variable but of node class %s", nodeClassName(ni.class))}
	}
	var out []string
	if ni.rankKnown && ni.valueRank != -1 {
		out = append(out, fmt.Sprintf("is not a scalar (value rank %d); every tag is one plain value", ni.valueRank))
	}
	if m := checkType(tag, ni); m != "" {
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

// checkType checks the node's data type against what tag needs.
func checkType(tag string, ni *nodeInfo) string {
	k := tagKind(tag)
	want := map[kind]string{
		kString: "String", kBool: "Boolean", kInt: "an integer type (SByte to UInt64)", kFloat: "a number (Double, Float or an integer type)",
	}[k]
	if tag == "AckCounter" {
		want = "UInt32 (the agent writes AckCounter as UInt32)"
	}
	if ni.dataType == nil {
		return ""
	}
	bt, builtin := builtinType(ni.dataType)
	if !builtin {
		// A vendor or derived type: judge by the value it holds now.
		if ni.value == nil || ni.value.Status != ua.StatusOK {
			return ""
		}
		if _, reason := convert(k, ni.value); reason != "" {
			return fmt.Sprintf("data type %s: %s", ni.dataType, reason)
		}
		return ""
	}
	ok := false
	switch k {
	case kString:
		ok = bt == id.String
	case kBool:
		ok = bt == id.Boolean
	case kInt:
		ok = bt >= id.SByte && bt <= id.UInt64 || bt == id.Integer || bt == id.UInteger
	case kFloat:
		ok = bt >= id.SByte && bt <= id.Double || bt == id.Number || bt == id.Integer || bt == id.UInteger
	}
	if tag == "AckCounter" {
		ok = bt == id.UInt32
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("data type %s, want %s", dataTypeName(ni.dataType), want)
}

// builtinType maps a data type node id to the built-in type it is or
// derives from (Duration is a Double, UtcTime a DateTime, Counter a
// UInt32, ...). It reports false for types it does not know.
func builtinType(dt *ua.NodeID) (uint32, bool) {
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
