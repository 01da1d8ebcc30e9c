package stations

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/event"
)

// readPlan is how the agent reads a station: each distinct node (and
// array index) once, CycleCounter first, and for every logical tag where
// its value comes from.
type readPlan struct {
	st    *line.Station
	tags  []string          // every logical tag of the station, in Tags order
	reads []*ua.ReadValueID // what one poll reads
	at    map[string]int    // tag -> index in reads; absent for const and absent tags
	keys  map[readKey]int   // node and index range -> index in reads
	specs map[string]line.Tag
}

type readKey struct{ node, indexRange string }

// newReadPlan plans the reads of tags (a subset of st's tags, in order;
// the first is read first).
func newReadPlan(st *line.Station, tags []string) (*readPlan, error) {
	p := &readPlan{st: st, tags: tags, at: map[string]int{}, keys: map[readKey]int{}, specs: map[string]line.Tag{}}
	for _, tag := range tags {
		t := st.Nodes[tag]
		p.specs[tag] = t
		if !t.IsRead() {
			continue
		}
		node, ir, ok := t.ReadID()
		if !ok {
			return nil, fmt.Errorf("station %s: tag %s: node id %q does not parse", st.ID, tag, t.Node)
		}
		k := readKey{node.String(), ir}
		i, seen := p.keys[k]
		if !seen {
			i = len(p.reads)
			p.keys[k] = i
			p.reads = append(p.reads, &ua.ReadValueID{NodeID: node, AttributeID: ua.AttributeIDValue, IndexRange: ir})
		}
		p.at[tag] = i
	}
	return p, nil
}

// snapshot is one poll of a station's tags, decoded and checked.
type snapshot struct {
	st     *line.Station
	values map[string]any // good values, converted to string, bool, int64 or float64
	bad    map[string]event.BadValue
	absent map[string]bool   // tags the PLC does not have
	codes  map[string]string // the PLC's own value of a mapped tag, for messages
}

// decode converts what one poll read (dvs, in the order of p.reads) into
// the logical tags' values.
func (p *readPlan) decode(dvs []*ua.DataValue) *snapshot {
	s := &snapshot{st: p.st, values: make(map[string]any, len(p.tags)), bad: map[string]event.BadValue{}, absent: map[string]bool{}, codes: map[string]string{}}
	for _, tag := range p.tags {
		t := p.specs[tag]
		switch {
		case t.Absent:
			s.absent[tag] = true
			continue
		case t.Const != nil:
			v, _ := line.ParseValue(tag, *t.Const) // the config is validated
			s.values[tag] = v
			continue
		}
		dv := dvs[p.at[tag]]
		if raw, r := plcValue(dv); r == "" && t.Map != nil {
			s.codes[tag] = mapKey(raw)
		}
		v, reason := convertTag(tag, &t, dv)
		if reason != "" {
			s.bad[tag] = event.BadValue{Tag: tag, NodeID: t.Where(), Reason: reason}
			continue
		}
		s.values[tag] = v
	}
	return s
}

// convertTag checks a DataValue's quality and converts it to tag's kind
// through t's map or scale. It returns the value as string, bool, int64 or
// float64, or a reason why it cannot be used. Types convert only where no
// information is lost: an integer to a number or to text, never a number
// to an integer or text to a number.
func convertTag(tag string, t *line.Tag, dv *ua.DataValue) (any, string) {
	raw, reason := plcValue(dv)
	if reason != "" && t.Index != nil {
		raw, reason = element(dv) // a Read with an IndexRange gives a one-element array
	}
	if reason != "" {
		return nil, reason
	}
	kind := line.KindOf(tag)
	if t.Map != nil {
		key := mapKey(raw)
		logical, ok := t.Map[key]
		if !ok {
			if t.Default == nil {
				return nil, fmt.Sprintf("PLC value %s is not in the tag's map", key)
			}
			logical = strings.ReplaceAll(*t.Default, "{value}", key)
		}
		v, err := line.ParseValue(tag, logical)
		if err != nil {
			return nil, fmt.Sprintf("PLC value %s maps to %v", key, err)
		}
		return v, ""
	}
	v, reason := convertRaw(kind, raw, dv)
	if reason != "" || kind != line.KindFloat {
		return v, reason
	}
	scale := t.Scale
	if scale == 0 {
		scale = 1
	}
	return v.(float64)*scale + t.Offset, ""
}

// plcValue checks a DataValue's quality and returns its value as string,
// bool, int64, uint64 (beyond int64) or float64.
func plcValue(dv *ua.DataValue) (any, string) {
	if dv == nil {
		return nil, "no value returned"
	}
	if dv.Status != ua.StatusOK {
		return nil, fmt.Sprintf("bad quality: %s", dv.Status.Error())
	}
	if dv.Value == nil || dv.Value.Value() == nil {
		return nil, "no value (null)"
	}
	switch n := dv.Value.Value().(type) {
	case string, bool, float64:
		return n, ""
	case float32:
		return float64(n), ""
	case int8:
		return int64(n), ""
	case int16:
		return int64(n), ""
	case int32:
		return int64(n), ""
	case int64:
		return n, ""
	case uint8:
		return int64(n), ""
	case uint16:
		return int64(n), ""
	case uint32:
		return int64(n), ""
	case uint64:
		if n <= math.MaxInt64 {
			return int64(n), ""
		}
		return n, ""
	}
	return nil, fmt.Sprintf("wrong type: %s (an array or a structure? give an index, or map the structure's fields)", typeName(dv))
}

// element returns the one element of an array value, as plcValue would
// return a scalar, or why not.
func element(dv *ua.DataValue) (any, string) {
	v := reflect.ValueOf(dv.Value.Value())
	if v.Kind() != reflect.Slice || v.Len() != 1 {
		return nil, fmt.Sprintf("wrong type: %s, want one element of the array", typeName(dv))
	}
	return plcValue(&ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v.Index(0).Interface())})
}

// convertKind checks dv's quality and converts its value to kind k where
// nothing is lost, with no map or scale.
func convertKind(k line.Kind, dv *ua.DataValue) (any, string) {
	raw, reason := plcValue(dv)
	if reason != "" {
		return nil, reason
	}
	return convertRaw(k, raw, dv)
}

// convertRaw converts a PLC value to kind where nothing is lost.
func convertRaw(k line.Kind, raw any, dv *ua.DataValue) (any, string) {
	switch k {
	case line.KindString:
		switch v := raw.(type) {
		case string:
			return v, ""
		case int64:
			return strconv.FormatInt(v, 10), "" // a body number as an integer
		case uint64:
			return strconv.FormatUint(v, 10), ""
		}
	case line.KindBool:
		if b, ok := raw.(bool); ok {
			return b, ""
		}
	case line.KindInt:
		switch v := raw.(type) {
		case int64:
			return v, ""
		case float64:
			return nil, fmt.Sprintf("wrong type: %s, want an integer (a number would lose its fraction)", typeName(dv))
		}
	case line.KindFloat:
		switch v := raw.(type) {
		case float64:
			return v, ""
		case int64:
			return float64(v), ""
		case uint64:
			return float64(v), ""
		}
	}
	return nil, fmt.Sprintf("wrong type: %s, want %s (or give a map)", typeName(dv), k)
}

// mapKey is a PLC value as a map key is written in YAML: 1, true, text.
func mapKey(raw any) string {
	switch v := raw.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(raw)
}

func typeName(dv *ua.DataValue) string {
	if dv == nil || dv.Value == nil {
		return "none"
	}
	s := strings.TrimPrefix(dv.Value.Type().String(), "TypeID")
	if dv.Value.ArrayLength() > 0 {
		s += " array"
	}
	return s
}

// asCounter returns a counter tag's value as a uint32, or why not.
func (s *snapshot) counter(tag string) (uint32, string) {
	v, ok := s.values[tag].(int64)
	if !ok {
		if b, bad := s.bad[tag]; bad {
			return 0, b.Reason
		}
		return 0, "absent"
	}
	if v < 0 || v > math.MaxUint32 {
		return 0, fmt.Sprintf("value %d is not a counter (0 to %d)", v, uint32(math.MaxUint32))
	}
	return uint32(v), ""
}

func (s *snapshot) str(tag string) string {
	v, _ := s.values[tag].(string)
	return v
}

func (s *snapshot) boolean(tag string) bool {
	v, _ := s.values[tag].(bool)
	return v
}

func (s *snapshot) int(tag string) int64 {
	v, _ := s.values[tag].(int64)
	return v
}

// floatp is tag's value, nil when it is unknown or absent.
func (s *snapshot) floatp(tag string) *float64 {
	if v, ok := s.values[tag].(float64); ok {
		return &v
	}
	return nil
}

// boolp is tag's value, nil when it is unknown or absent.
func (s *snapshot) boolp(tag string) *bool {
	if v, ok := s.values[tag].(bool); ok {
		return &v
	}
	return nil
}

func (s *snapshot) good(tag string) bool {
	_, ok := s.values[tag]
	return ok
}

// known reports whether tag has a value or is absent by design (so its
// nil is "not measured", not "unknown").
func (s *snapshot) known(tag string) bool { return s.good(tag) || s.absent[tag] }

// badList returns the bad values among tags, in the order given.
func (s *snapshot) badList(tags []string) []event.BadValue {
	var out []event.BadValue
	for _, t := range tags {
		if b, ok := s.bad[t]; ok {
			out = append(out, b)
		}
	}
	return out
}

// cycle builds the data of a cycle event from the result block. A joint
// or test with a value keiline could not read has an unknown verdict,
// never OK; without a Result.Status tag the result is NOK when a joint or
// test is NOK, else OK.
func (s *snapshot) cycle(counter uint32) *event.Cycle {
	c := &event.Cycle{
		Counter: counter,
		Result:  s.str("Result.Status"),
		Model:   s.str("Result.Model"),
		Variant: s.str("Result.Variant"),
		Colour:  s.str("Result.Colour"),
		Parts:   []event.Part{},
		Joints:  []event.Joint{},
		Tests:   []event.Test{},
	}
	var used []string
	use := func(tags ...string) { used = append(used, tags...) }
	use("Result.Vin", "Result.BodyNo", "Result.Model", "Result.Variant", "Result.Colour", "Result.Status", "Result.StartTime", "Result.EndTime")
	if s.good("Result.StartTime") {
		c.StartedAt = msTime(s.int("Result.StartTime"))
	}
	slot := func(prefix string, i int, suffix string) string { return fmt.Sprintf("%s%d.%s", prefix, i, suffix) }
	name := func(tag, fallback string) string {
		if s.absent[tag] {
			return fallback
		}
		return s.str(tag)
	}
	nok := false
	for i := 1; i <= s.st.Parts; i++ {
		key := slot("Part", i, "PartNumber")
		if s.good(key) && s.str(key) == "" {
			continue // slot unused this cycle
		}
		tags := []string{key, slot("Part", i, "Serial"), slot("Part", i, "Lot"), slot("Part", i, "Supplier")}
		use(tags...)
		c.Parts = append(c.Parts, event.Part{PartNumber: s.str(tags[0]), Serial: s.str(tags[1]), Lot: s.str(tags[2]), Supplier: s.str(tags[3])})
	}
	for i := 1; i <= s.st.Joints; i++ {
		key := slot("Joint", i, "Name")
		if s.good(key) && s.str(key) == "" {
			continue
		}
		tags := []string{key, slot("Joint", i, "Tool"), slot("Joint", i, "TorqueNm"), slot("Joint", i, "AngleDeg"), slot("Joint", i, "OK")}
		use(tags...)
		j := event.Joint{Joint: name(key, fmt.Sprintf("Joint%d", i)), Tool: s.str(tags[1]), TorqueNm: s.floatp(tags[2]), AngleDeg: s.floatp(tags[3]), OK: s.boolp(tags[4])}
		if !s.known(tags[2]) || !s.known(tags[3]) {
			j.OK = nil // a joint keiline could not read is unknown, never OK
		}
		nok = nok || event.IsNOK(j.OK)
		c.Joints = append(c.Joints, j)
	}
	for i := 1; i <= s.st.Tests; i++ {
		key := slot("Test", i, "Name")
		if s.good(key) && s.str(key) == "" {
			continue
		}
		tags := []string{key, slot("Test", i, "Unit"), slot("Test", i, "Value"), slot("Test", i, "Low"), slot("Test", i, "High"), slot("Test", i, "OK")}
		use(tags...)
		x := event.Test{Name: name(key, fmt.Sprintf("Test%d", i)), Unit: s.str(tags[1]), Value: s.floatp(tags[2]), Low: s.floatp(tags[3]), High: s.floatp(tags[4]), OK: s.boolp(tags[5])}
		if s.absent[tags[5]] && x.Value != nil && x.Low != nil && x.High != nil {
			x.OK = new(*x.Low <= *x.Value && *x.Value <= *x.High) // the verdict from the limits
		}
		if !s.known(tags[2]) || !s.known(tags[3]) || !s.known(tags[4]) {
			x.OK = nil
		}
		nok = nok || event.IsNOK(x.OK)
		c.Tests = append(c.Tests, x)
	}
	if s.absent["Result.Status"] {
		c.Result = "OK"
		if nok {
			c.Result = "NOK"
		}
	}
	c.Bad = s.badList(used)
	return c
}

// stateOf is what a state event says of the station, without its counter.
type stateOf struct {
	state, faultText, vinPresent string
	faultCode                    int32
	andon                        bool
}

// state builds the data of a state event.
func (s *snapshot) state() stateOf {
	return stateOf{
		state:      s.str("State"),
		faultCode:  int32(s.int("FaultCode")),
		faultText:  s.str("FaultText"),
		andon:      s.boolean("Andon"),
		vinPresent: s.str("VinPresent"),
	}
}

func (st stateOf) event(counter uint64, clock string) *event.State {
	return &event.State{Counter: counter, Clock: clock, State: st.state, FaultCode: st.faultCode, FaultText: st.faultText,
		Andon: st.andon, VinPresent: st.vinPresent}
}
