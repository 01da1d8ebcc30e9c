package line

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/pipeline/event"
	"go.yaml.in/yaml/v3"
)

// Kind is the type a logical tag's value has once the agent has read and
// converted it (docs/plc-tags.md).
type Kind int

// Value kinds of logical tags.
const (
	KindString Kind = iota
	KindBool
	KindInt   // an integer (counters, codes, Unix milliseconds)
	KindFloat // a number (torques, angles, test values)
)

func (k Kind) String() string {
	return [...]string{"String", "Boolean", "integer", "number"}[k]
}

// Tag says where one logical tag's value comes from. In YAML a tag is
// either a node id (`CycleCounter: 'ns=3;s="DB100"."CycleCtr"'`) or a
// mapping with exactly one source — node, const or absent — and, for a
// node, the conversions that make the PLC's value the logical one:
//
//	Joint1.TorqueNm: {node: 'ns=3;s="DB101"."Nut"[1]."Nm"', scale: 0.01}
//	Joint1.AngleDeg: {node: 'ns=3;s="DB101"."Angle"', index: 0, scale: 0.1}
//	Joint1.OK:       {node: 'ns=3;s="DB101"."Nut"[1]."Result"', map: {1: true, 2: false}}
//	Joint1.Name:     {const: wheel nut 1}
//	StateCounter:    {absent: true}
//
// Several tags may share one node (FaultCode and FaultText, one tool id
// for four joints); the agent reads each node once per poll.
type Tag struct {
	// Node is the OPC UA node id holding the value.
	Node string `yaml:"node,omitempty"`
	// Index picks one element (0-based) of an array node, read with an
	// OPC UA IndexRange.
	Index *int `yaml:"index,omitempty"`
	// Const is a fixed value the PLC does not give (a joint's name, a
	// part number, a test's limits).
	Const *string `yaml:"const,omitempty"`
	// Absent says the PLC has no such tag; only optional tags may be
	// absent, and Optional says what keiline does instead.
	Absent bool `yaml:"absent,omitempty"`
	// Map translates the PLC's codes into logical values: its keys are
	// the PLC's values as written in YAML (1, true, "A"), its values the
	// logical values (running, OK, true, a fault text).
	Map map[string]string `yaml:"map,omitempty"`
	// Default is the logical value of a code the map lacks; without it
	// such a code is a bad value, never guessed. {value} in it is the
	// PLC's value ("fault {value}").
	Default *string `yaml:"default,omitempty"`
	// Scale and Offset convert a number: logical = PLC value × Scale +
	// Offset (torque in 0.01 N·m: scale 0.01). Scale defaults to 1.
	// Only for number tags.
	Scale  float64 `yaml:"scale,omitempty"`
	Offset float64 `yaml:"offset,omitempty"`

	line int // line in the config file
	kind yaml.Kind
}

// UnmarshalYAML takes a node id (a scalar) or a mapping. It never fails:
// what does not fit is reported by Validate with its line, with every
// other problem of the file.
func (t *Tag) UnmarshalYAML(n *yaml.Node) error {
	t.line, t.kind = n.Line, n.Kind
	switch n.Kind {
	case yaml.ScalarNode:
		t.Node = n.Value
	case yaml.MappingNode:
		type plain Tag
		var p plain
		if err := n.Decode(&p); err != nil {
			// A wrong type inside (index: x): the fields that decoded stay,
			// Validate names the rest.
			p.line = -1
		}
		line, kind := t.line, t.kind
		*t = Tag(p)
		if p.line == -1 {
			kind = yaml.AliasNode // marks "did not decode"
		}
		t.line, t.kind = line, kind
	}
	return nil
}

// MarshalYAML writes a plain node id as a scalar.
func (t Tag) MarshalYAML() (any, error) {
	if t.Index == nil && t.Const == nil && !t.Absent && t.Map == nil && t.Default == nil && t.Scale == 0 && t.Offset == 0 {
		return t.Node, nil
	}
	type plain Tag
	return plain(t), nil
}

// NodeTag is a tag read from node, as it is.
func NodeTag(node string) Tag { return Tag{Node: node} }

// ConstTag is a tag with the fixed value v.
func ConstTag(v string) Tag { return Tag{Const: &v} }

// AbsentTag is a tag the PLC does not have.
func AbsentTag() Tag { return Tag{Absent: true} }

// NodeTags maps each tag of nodes (logical tag → node id) to NodeTag.
func NodeTags(nodes map[string]string) map[string]Tag {
	out := make(map[string]Tag, len(nodes))
	for tag, n := range nodes {
		out[tag] = NodeTag(n)
	}
	return out
}

// Line is the config file line the tag was written on (0 when made in code).
func (t Tag) Line() int { return t.line }

// IsRead reports whether the agent reads the tag from the PLC.
func (t Tag) IsRead() bool { return t.Node != "" && t.Const == nil && !t.Absent }

// ReadID is the node and index range the agent reads for the tag; ok is
// false for a constant or absent tag.
func (t Tag) ReadID() (node *ua.NodeID, indexRange string, ok bool) {
	if !t.IsRead() {
		return nil, "", false
	}
	n, err := ua.ParseNodeID(t.Node)
	if err != nil {
		return nil, "", false
	}
	if t.Index != nil {
		indexRange = strconv.Itoa(*t.Index)
	}
	return n, indexRange, true
}

// Where names the tag's source for messages: its node id (with the array
// index), "const" or "absent".
func (t Tag) Where() string {
	switch {
	case t.Absent:
		return "absent"
	case t.Const != nil:
		return "const " + strconv.Quote(*t.Const)
	case t.Index != nil:
		return fmt.Sprintf("%s index %d", t.Node, *t.Index)
	}
	return t.Node
}

// Optional says, for each tag a station may leave out (or map absent),
// what keiline does instead. Tags not listed are required.
var Optional = map[string]string{
	"Heartbeat":        "no liveness check of the PLC",
	"FaultCode":        "fault code 0",
	"FaultText":        "no fault text (map it from the FaultCode node with a table)",
	"Andon":            "no andon from the PLC",
	"StateCounter":     "change detection by value: a state event when State, FaultCode, FaultText, Andon or VinPresent changes, numbered by the agent's clock",
	"VinPresent":       "the car in the station is not known until its cycle",
	"Result.Vin":       "the car is identified by Result.BodyNo",
	"Result.BodyNo":    "the car is identified by Result.Vin",
	"Result.Model":     "model unknown at this station",
	"Result.Variant":   "variant unknown at this station",
	"Result.Colour":    "colour unknown at this station",
	"Result.Status":    "the result is NOK when a joint or test is NOK, else OK",
	"Result.StartTime": "the agent's clock, marked clock: agent in the event",
	"Result.EndTime":   "the agent's clock when it read the result, marked clock: agent in the event",
	"Part.Serial":      "no serial (a lot-traced part)",
	"Part.Lot":         "no lot",
	"Part.Supplier":    "no supplier",
	"Joint.Name":       "the slot's name, Joint<n> (or give it with const)",
	"Joint.Tool":       "no tool id",
	"Joint.AngleDeg":   "no angle measured (recorded as none, not as 0)",
	"Test.Name":        "the slot's name, Test<n> (or give it with const)",
	"Test.Unit":        "no unit",
	"Test.Low":         "no lower limit",
	"Test.High":        "no upper limit",
	"Test.OK":          "OK when the value is within Low..High (both must be known), else NOK",
}

// OptionalTag reports whether tag may be absent and what keiline does
// instead. Slot tags are looked up without their slot number
// (Joint3.AngleDeg as Joint.AngleDeg).
func OptionalTag(tag string) (string, bool) {
	s, ok := Optional[slotless(tag)]
	return s, ok
}

// slotless drops a slot's number: Joint3.AngleDeg → Joint.AngleDeg.
func slotless(tag string) string {
	head, rest, ok := strings.Cut(tag, ".")
	if !ok {
		return tag
	}
	trimmed := strings.TrimRight(head, "0123456789")
	if trimmed != head && trimmed != "" {
		return trimmed + "." + rest
	}
	return tag
}

// KindOf returns the value kind of a logical tag.
func KindOf(tag string) Kind {
	switch tag {
	case "Heartbeat", "FaultCode", "StateCounter", "CycleCounter", "AckCounter", "Result.StartTime", "Result.EndTime":
		return KindInt
	case "Andon", "DataReady":
		return KindBool
	}
	switch {
	case tag == ManifestLastSeq || strings.HasPrefix(tag, "Manifest") && strings.HasSuffix(tag, ".Seq"):
		return KindInt
	case strings.HasSuffix(tag, ".OK"):
		return KindBool
	case strings.HasSuffix(tag, ".TorqueNm"), strings.HasSuffix(tag, ".AngleDeg"),
		strings.HasSuffix(tag, ".Value"), strings.HasSuffix(tag, ".Low"), strings.HasSuffix(tag, ".High"):
		return KindFloat
	}
	return KindString
}

// ParseValue converts a logical value written in the config (a const or a
// map value) to the tag's kind: string, bool, int64 or float64. State
// values must be a station state.
func ParseValue(tag, s string) (any, error) {
	switch KindOf(tag) {
	case KindBool:
		switch strings.ToLower(s) {
		case "true", "ok":
			return true, nil
		case "false", "nok":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not a Boolean; allowed: true, false (or OK, NOK)", s)
	case KindInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return n, nil
	case KindFloat:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	}
	switch {
	case tag == "State" && !slices.Contains(event.States, s):
		return nil, fmt.Errorf("%q is not a station state; allowed: %s", s, strings.Join(event.States, ", "))
	case tag == "Result.Status" && s != "OK" && s != "NOK":
		return nil, fmt.Errorf("%q is not a result; allowed: OK, NOK", s)
	}
	return s, nil
}

// validateTag checks one tag of a station and reports each problem with
// add (the field is nodes.<tag>).
func validateTag(tag string, t *Tag, add func(format string, a ...any)) {
	if t.kind == yaml.AliasNode {
		add("a field has the wrong type (index: a whole number; map: a mapping; scale, offset: numbers; absent: true)")
	}
	if t.kind == yaml.SequenceNode {
		add("a node id or a mapping (node, const or absent), not a list")
		return
	}
	sources := 0
	for _, set := range []bool{t.Node != "", t.Const != nil, t.Absent} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		add("give exactly one of node, const and absent (%d given)", sources)
		return
	}
	if t.Absent {
		if _, ok := OptionalTag(tag); !ok {
			add("cannot be absent: keiline needs it (docs/plc-tags.md); map it to a node or give a const")
		}
		if t.Index != nil || t.Map != nil || t.Default != nil || t.Scale != 0 || t.Offset != 0 {
			add("an absent tag takes no index, map, default, scale or offset")
		}
		return
	}
	if t.Const != nil {
		if t.Index != nil || t.Map != nil || t.Default != nil || t.Scale != 0 || t.Offset != 0 {
			add("a const takes no index, map, default, scale or offset")
		}
		if _, err := ParseValue(tag, *t.Const); err != nil {
			add("const: %v", err)
		}
		if tag == "AckCounter" || tag == "CycleCounter" || tag == "DataReady" || strings.HasPrefix(tag, "Manifest") {
			add("the handshake and manifest tags must be PLC nodes, not constants")
		}
		return
	}
	if _, err := ua.ParseNodeID(t.Node); err != nil {
		add("node id %q: %v", t.Node, err)
	}
	if t.Index != nil && *t.Index < 0 {
		add("index %d: array indexes start at 0", *t.Index)
	}
	if tag == "AckCounter" && (t.Map != nil || t.Scale != 0 || t.Offset != 0 || t.Default != nil) {
		add("the agent writes AckCounter as the cycle counter: no map, default, scale or offset")
	}
	kind := KindOf(tag)
	if (t.Scale != 0 || t.Offset != 0) && kind != KindFloat {
		add("scale and offset are for number tags (torque, angle, test values), not a %s tag", kind)
	}
	if t.Scale < 0 || math.IsNaN(t.Scale) || math.IsInf(t.Scale, 0) {
		add("scale %g must be a positive number", t.Scale)
	}
	if t.Map != nil && (t.Scale != 0 || t.Offset != 0) {
		add("map and scale/offset do not go together")
	}
	if t.Default != nil && t.Map == nil {
		add("default is the value of a code the map lacks: give a map")
	}
	keys := make([]string, 0, len(t.Map))
	for k := range t.Map {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, err := ParseValue(tag, t.Map[k]); err != nil {
			add("map %s: %v", k, err)
		}
	}
	if t.Default != nil {
		if _, err := ParseValue(tag, strings.ReplaceAll(*t.Default, "{value}", "0")); err != nil {
			add("default: %v", err)
		}
	}
}
