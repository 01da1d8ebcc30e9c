package stations

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/line"
	"go.yaml.in/yaml/v3"
)

// TagMatch is what a browse found for a logical tag: the node it drafts
// the tag from (with an array index, or a draft map), or that it found
// none.
type TagMatch struct {
	Tag string
	// Node is the browsed variable the tag is drafted from; nil when none
	// matched.
	Node *BrowsedNode
	// Spec is the drafted tag: the node (with index) or, for an optional
	// tag no node matched, absent.
	Spec line.Tag
	// Others are further nodes that match as well, for the integrator to
	// choose from.
	Others []string
	// Problem is set when the node's data type or access does not fit.
	Problem string
	// Notes say what the integrator must check or write (a code map, a
	// unit scale).
	Notes []string
}

// Names PLC programmers give the station tags, normalized (lower case,
// letters and digits). The logical name itself always matches.
var tagSynonyms = map[string][]string{
	"Heartbeat":        {"heartbeat", "lifectr", "lifecounter", "lifebit", "life", "alive", "watchdog", "toggle"},
	"State":            {"state", "stationstate", "mode", "opstate"},
	"FaultCode":        {"faultcode", "faultno", "faultnr", "faultnumber", "fault", "errorcode", "errorno", "errno", "alarmno", "alarmcode"},
	"FaultText":        {"faulttext", "faultmsg", "faultmessage", "errortext", "errormessage", "alarmtext"},
	"Andon":            {"andon", "help", "callhelp", "helpcall"},
	"StateCounter":     {"statecounter", "statectr", "statecnt", "changecounter"},
	"VinPresent":       {"vinpresent", "bodynopresent", "bodypresent", "carpresent", "vinactual", "bodynoactual"},
	"CycleCounter":     {"cyclecounter", "cyclectr", "cyclecnt", "cyclecount", "cycleno", "cyclenr", "resultcounter", "resultctr"},
	"DataReady":        {"dataready", "ready", "resultready", "datavalid", "resultvalid", "newdata"},
	"AckCounter":       {"ackcounter", "ackctr", "ackcnt", "acknowledge", "ack", "mesack"},
	"Result.Vin":       {"vin", "vinno", "vinnumber"},
	"Result.BodyNo":    {"bodyno", "bodynumber", "bodynr", "bodyid", "pin", "trackingno", "trackno", "carno"},
	"Result.Model":     {"model", "modelcode", "modelno", "type", "typecode"},
	"Result.Variant":   {"variant", "variantcode", "version"},
	"Result.Colour":    {"colour", "color", "colourcode", "colorcode", "paint"},
	"Result.Status":    {"verdict", "resultstatus", "oknok", "iostatus", "result"},
	"Result.StartTime": {"starttime", "start", "cyclestart"},
	"Result.EndTime":   {"endtime", "end", "cycleend", "timestamp", "time"},
}

// Names of a slot's fields, normalized.
var fieldSynonyms = map[string][]string{
	"PartNumber": {"partnumber", "partno", "partnr", "pn", "material", "article"},
	"Serial":     {"serial", "serialno", "sn", "serialnumber"},
	"Lot":        {"lot", "lotno", "batch", "charge"},
	"Supplier":   {"supplier", "vendor"},
	"Name":       {"name", "jointname", "testname", "description"},
	"Tool":       {"tool", "toolid", "toolno", "nutrunner", "spindle"},
	"TorqueNm":   {"torquenm", "torque", "nm", "tq", "finaltorque"},
	"AngleDeg":   {"angledeg", "angle", "deg", "finalangle"},
	"OK":         {"ok", "result", "status", "verdict", "iook"},
	"Unit":       {"unit"},
	"Value":      {"value", "val", "measured", "actual"},
	"Low":        {"low", "min", "lowlimit", "lsl", "lowerlimit"},
	"High":       {"high", "max", "highlimit", "usl", "upperlimit"},
}

// Words PLC programmers name a slot's structure with, per slot kind.
var slotWords = map[string][]string{
	"Part":  {"part", "component", "comp"},
	"Joint": {"joint", "nut", "bolt", "screw", "tightening", "fastener"},
	"Test":  {"test", "check", "measurement", "meas"},
}

// token is one browse-name part: its normalized name and, for "Nut[3]" or
// "Joint3", the slot number.
type token struct {
	name string
	slot int // 0: none
}

// candidate is a browsed variable with its tokens.
type candidate struct {
	n      *BrowsedNode
	toks   []token
	array  bool
	leaf   string
	parent string // the normalized path above the leaf, to group arrays with their structures
}

var indexed = regexp.MustCompile(`^(.*?)\[(\d+)\]$`)

// tokenize splits a browse path into tokens: dotted names are split,
// "Nut[3]" and "Joint3" carry their slot number.
func tokenize(path []string) []token {
	var out []token
	for _, p := range path {
		for _, part := range strings.Split(p, ".") {
			part = strings.Trim(part, `"`)
			if m := indexed.FindStringSubmatch(part); m != nil {
				n, _ := strconv.Atoi(m[2])
				out = append(out, token{name: normalizeName(m[1]), slot: n})
				continue
			}
			name := normalizeName(part)
			trimmed := strings.TrimRight(name, "0123456789")
			if trimmed != name && isSlotWord(trimmed) {
				n, _ := strconv.Atoi(name[len(trimmed):])
				out = append(out, token{name: trimmed, slot: n})
				continue
			}
			out = append(out, token{name: name})
		}
	}
	return out
}

func isSlotWord(w string) bool {
	for _, ws := range slotWords {
		if slices.Contains(ws, w) {
			return true
		}
	}
	return false
}

// MatchStation drafts the tag map of station id from a browse, by name
// and type: each station tag matches a variable named as PLC programmers
// name it (CycleCtr, Ready, AckCtr, LifeCtr, FaultNo, BodyNo, Verdict …;
// compared without case, spaces, '_' and '-'), a slot's tags match the
// fields of a structure array (Nut[3].Nm) or of numbered slots
// (Joint3.TorqueNm), an array variable (Angle[4]) is read by element, and
// one variable without a slot (ToolId) serves every slot. Among several
// matches, one whose path names the station wins. Optional tags no
// variable matches are drafted absent; the notes say what to check (a
// code map for an integer verdict or state, a scale for an integer
// torque). The slot counts are the highest slot numbers found.
func MatchStation(res *BrowseResult, id, endpoint string) (*line.Station, []TagMatch) {
	var cands []candidate
	for i := range res.Nodes {
		n := &res.Nodes[i]
		if n.NodeClass != ua.NodeClassVariable || len(n.Path) == 0 {
			continue
		}
		toks := tokenize(n.Path)
		var parent []string
		for _, t := range toks[:len(toks)-1] {
			parent = append(parent, t.name)
		}
		cands = append(cands, candidate{n: n, toks: toks, array: n.ValueRank >= 1, leaf: toks[len(toks)-1].name, parent: strings.Join(parent, "/")})
	}
	st := &line.Station{ID: id, Endpoint: endpoint, Nodes: map[string]line.Tag{}}
	for kind, n := range map[string]*int{"Part": &st.Parts, "Joint": &st.Joints, "Test": &st.Tests} {
		*n = slotCount(cands, kind)
	}
	var matches []TagMatch
	for _, tag := range st.Tags() {
		m := matchTag(cands, tag, id)
		draft(&m)
		st.Nodes[tag] = m.Spec
		matches = append(matches, m)
	}
	return st, matches
}

// slotCount is the highest slot number of kind a structure or numbered
// slot in the browse has, counting only slots with a field keiline knows.
func slotCount(cands []candidate, kind string) int {
	n := 0
	for _, c := range cands {
		for _, t := range c.toks[:len(c.toks)-1] {
			if t.slot > n && slices.Contains(slotWords[kind], t.name) && isField(kind, c.leaf) {
				n = t.slot
			}
		}
	}
	return min(n, line.SlotsMax)
}

// isField reports whether a leaf name is a field of a slot of kind.
func isField(kind, leaf string) bool {
	fields := map[string][]string{"Part": line.PartTags, "Joint": line.JointTags, "Test": line.TestTags}[kind]
	for _, f := range fields {
		if leaf == normalizeName(f) || slices.Contains(fieldSynonyms[f], leaf) {
			return true
		}
	}
	return false
}

// matchTag finds the best variable for tag, with the others as good.
func matchTag(cands []candidate, tag, station string) TagMatch {
	m := TagMatch{Tag: tag}
	score := func(c candidate) (int, *int) { return tagScore(c, tag, station) }
	best, bestScore := -1, 0
	var bestIndex *int
	for i, c := range cands {
		if sc, idx := score(c); sc > bestScore {
			best, bestScore, bestIndex = i, sc, idx
		}
	}
	if best < 0 {
		return m
	}
	m.Node = cands[best].n
	m.Spec = line.Tag{Node: m.Node.NodeID, Index: bestIndex}
	for i, c := range cands {
		if sc, _ := score(c); i != best && sc == bestScore {
			m.Others = append(m.Others, c.n.NodeID)
		}
	}
	return m
}

// tagScore rates how well c matches tag: 0 not at all; higher is better.
// A path naming the station adds to the score. For an array variable
// serving a slot it returns the element's index.
func tagScore(c candidate, tag, station string) (int, *int) {
	sc, idx := nameScore(c, tag)
	if sc == 0 {
		return 0, nil
	}
	st := normalizeName(station)
	for _, t := range c.toks[:len(c.toks)-1] {
		if t.name == st {
			return sc*4 + 2, idx
		}
		if strings.Contains(t.name, st) {
			return sc*4 + 1, idx
		}
	}
	return sc * 4, idx
}

// nameScore is 3 when c's path spells the logical tag (.../Result/Vin,
// Joint3.TorqueNm), 2 when its leaf is a name programmers give the tag
// (in the slot's structure for a slot tag), 1 for a slot tag served by
// an array element or by one variable without a slot; else 0.
func nameScore(c candidate, tag string) (int, *int) {
	var names []string
	for _, t := range c.toks {
		names = append(names, t.name+slotSuffix(t.slot))
	}
	if suffixLen(names, tagParts(tag)) > 0 {
		return 3, nil
	}
	head, field, isSlot := strings.Cut(tag, ".")
	kind := strings.TrimRight(head, "0123456789")
	if !isSlot || kind == "Result" || kind == "Manifest" || !slices.Contains([]string{"Part", "Joint", "Test"}, kind) {
		if !c.array && slices.Contains(tagSynonyms[tag], c.leaf) {
			return 2, nil
		}
		return 0, nil
	}
	slot, _ := strconv.Atoi(head[len(kind):])
	if !slices.Contains(fieldSynonyms[field], c.leaf) && c.leaf != normalizeName(field) {
		return 0, nil
	}
	inSlot, anySlot := false, false
	for _, t := range c.toks[:len(c.toks)-1] {
		if t.slot > 0 && slices.Contains(slotWords[kind], t.name) {
			anySlot = true
			inSlot = inSlot || t.slot == slot
		}
	}
	switch {
	case inSlot && !c.array:
		return 2, nil
	case anySlot:
		return 0, nil // another slot's field
	case c.array:
		i := slot - 1 // OPC UA index ranges count from 0
		return 1, &i
	case field == "Tool" || field == "Unit" || field == "Supplier":
		return 1, nil // one tool (unit, supplier) for every slot
	}
	return 0, nil
}

func slotSuffix(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// draft completes a match: an optional tag no node matched is absent, and
// a node whose type needs a map or a scale gets a note (and, for a fault
// text, a draft from the fault code's node).
func draft(m *TagMatch) {
	instead, optional := line.OptionalTag(m.Tag)
	if m.Node == nil {
		if optional {
			m.Spec = line.AbsentTag()
			m.Notes = append(m.Notes, "absent: "+instead)
		}
		return
	}
	ni := nodeInfo{class: ua.NodeClassVariable, dataType: m.Node.DataType, valueRank: m.Node.ValueRank, rankKnown: true,
		access: m.Node.AccessLevel, accessKnown: true, user: m.Node.UserAccessLevel, userKnown: true}
	bt, builtin := builtinType(m.Node.DataType)
	isInt := builtin && (bt >= id.SByte && bt <= id.UInt64)
	switch kind := line.KindOf(m.Tag); {
	case kind == line.KindBool && isInt:
		m.Notes = append(m.Notes, "TODO: an integer code: write its map, e.g. map: {1: true, 2: false} from the PLC's documentation")
	case m.Tag == "State" && isInt:
		m.Notes = append(m.Notes, "TODO: a state code: write its map to running, blocked, starved, fault, maintenance (e.g. map: {1: running, 4: fault})")
	case m.Tag == "Result.Status" && isInt:
		m.Notes = append(m.Notes, "TODO: a verdict code: write its map, e.g. map: {1: OK, 2: NOK}")
	case kind == line.KindFloat && isInt && strings.HasSuffix(m.Tag, "Nm"):
		m.Notes = append(m.Notes, "CHECK: an integer torque: give its unit with scale: (0.01 for hundredths of N·m)")
	case kind == line.KindFloat && isInt && strings.HasSuffix(m.Tag, "Deg"):
		m.Notes = append(m.Notes, "CHECK: an integer angle: give its unit with scale: (0.1 for tenths of a degree)")
	}
	t := m.Spec
	if len(m.Notes) == 0 || !strings.HasPrefix(m.Notes[len(m.Notes)-1], "TODO") {
		m.Problem = strings.Join(checkNode(m.Tag, &t, &ni), "; ")
	}
}

// normalizeName lower-cases s and drops what is not a letter or digit.
func normalizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, s)
}

func tagParts(tag string) []string {
	parts := strings.Split(tag, ".")
	for i, p := range parts {
		parts[i] = normalizeName(p)
	}
	return parts
}

// suffixLen is how many of the last path tokens spell the tag's parts
// want, or 0: "result","vin" and "resultvin" both end a path that matches
// Result.Vin.
func suffixLen(toks, want []string) int {
	w := strings.Join(want, "")
	s := ""
	for k := 1; k <= len(toks); k++ {
		s = toks[len(toks)-k] + s
		if s == w {
			return k
		}
		if len(s) >= len(w) {
			break
		}
	}
	return 0
}

// EmitStation writes station st as a YAML item of a line config's
// stations list: every tag with its drafted node (an array element as
// {node, index}), absent optional tags with what keiline does instead,
// and a comment on every tag that matched no node, matched several, or
// whose node needs a map or a scale or does not fit.
func EmitStation(w io.Writer, st *line.Station, matches []TagMatch) error {
	item := &yaml.Node{Kind: yaml.MappingNode}
	kv := func(m *yaml.Node, k string, v *yaml.Node) {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, v)
	}
	str := func(s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Style: yaml.DoubleQuotedStyle}
	}
	num := func(n int) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: fmt.Sprint(n), Tag: "!!int"} }
	kv(item, "id", &yaml.Node{Kind: yaml.ScalarNode, Value: st.ID})
	kv(item, "endpoint", &yaml.Node{Kind: yaml.ScalarNode, Value: st.Endpoint})
	kv(item, "parts", num(st.Parts))
	kv(item, "joints", num(st.Joints))
	kv(item, "tests", num(st.Tests))
	nodes := &yaml.Node{Kind: yaml.MappingNode}
	found, missing := 0, 0
	var todo []string
	for _, m := range matches {
		var v *yaml.Node
		notes := slices.Clone(m.Notes)
		switch {
		case m.Node == nil && m.Spec.Absent:
			v = &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
			kv(v, "absent", &yaml.Node{Kind: yaml.ScalarNode, Value: "true", Tag: "!!bool"})
		case m.Node == nil:
			missing++
			todo = append(todo, m.Tag)
			v = str("")
			notes = append(notes, "TODO: no node matched; write the node id (or a const)")
		case m.Spec.Index != nil:
			found++
			v = &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
			kv(v, "node", str(m.Node.NodeID))
			kv(v, "index", num(*m.Spec.Index))
		default:
			found++
			v = str(m.Node.NodeID)
		}
		if m.Problem != "" {
			notes = append(notes, "CHECK: "+m.Problem)
		}
		if len(m.Others) > 0 {
			notes = append(notes, "also matched: "+strings.Join(m.Others, ", "))
		}
		v.LineComment = strings.Join(notes, "; ")
		kv(nodes, m.Tag, v)
	}
	kv(item, "nodes", nodes)
	head := fmt.Sprintf("Station %s, drafted by `keiline plc browse --emit-station`: %d of %d tags found on the PLC, %d absent, %d not matched.",
		st.ID, found, len(matches), len(matches)-found-missing, missing)
	if len(todo) > 0 {
		head += "\nNot matched (write them): " + strings.Join(todo, ", ") + "."
	}
	item.HeadComment = head + "\nCheck every node, the TODO and CHECK notes, add name, zone and security settings (docs/line-config.md), then run `keiline plc check`."
	doc := &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{item}}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return enc.Close()
}
