package stations

import (
	"fmt"
	"math"
	"strings"

	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/event"
)

// kind is the Go type a logical tag's value must convert to.
type kind int

const (
	kString kind = iota
	kBool
	kInt   // any integer type that fits int64
	kFloat // any numeric type
)

func (k kind) String() string {
	return [...]string{"String", "Boolean", "integer", "number"}[k]
}

// tagKind returns the value kind of a logical tag (docs/plc-tags.md).
func tagKind(tag string) kind {
	switch tag {
	case "Heartbeat", "FaultCode", "StateCounter", "CycleCounter", "AckCounter", "Result.StartTime", "Result.EndTime":
		return kInt
	case "Andon", "DataReady":
		return kBool
	}
	switch {
	case tag == line.ManifestLastSeq || strings.HasPrefix(tag, "Manifest") && strings.HasSuffix(tag, ".Seq"):
		return kInt
	case strings.HasSuffix(tag, ".OK"):
		return kBool
	case strings.HasSuffix(tag, ".TorqueNm"), strings.HasSuffix(tag, ".AngleDeg"),
		strings.HasSuffix(tag, ".Value"), strings.HasSuffix(tag, ".Low"), strings.HasSuffix(tag, ".High"):
		return kFloat
	}
	return kString
}

// snapshot is one poll of a station's tags, decoded and checked.
type snapshot struct {
	st     *line.Station
	values map[string]any // good values, converted to string, bool, int64 or float64
	bad    map[string]event.BadValue
}

func decodeSnapshot(st *line.Station, tags []string, dvs []*ua.DataValue) *snapshot {
	s := &snapshot{st: st, values: make(map[string]any, len(tags)), bad: map[string]event.BadValue{}}
	for i, tag := range tags {
		v, reason := convert(tagKind(tag), dvs[i])
		if reason != "" {
			s.bad[tag] = event.BadValue{Tag: tag, NodeID: st.Nodes[tag], Reason: reason}
			continue
		}
		s.values[tag] = v
	}
	return s
}

// convert checks a DataValue's quality and type. It returns the value as
// string, bool, int64 or float64, or a reason why it cannot be used.
func convert(k kind, dv *ua.DataValue) (any, string) {
	if dv == nil {
		return nil, "no value returned"
	}
	if dv.Status != ua.StatusOK {
		return nil, fmt.Sprintf("bad quality: %s", dv.Status.Error())
	}
	if dv.Value == nil || dv.Value.Value() == nil {
		return nil, "no value (null)"
	}
	raw := dv.Value.Value()
	switch k {
	case kString:
		if s, ok := raw.(string); ok {
			return s, ""
		}
	case kBool:
		if b, ok := raw.(bool); ok {
			return b, ""
		}
	case kInt:
		switch n := raw.(type) {
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
		}
	case kFloat:
		switch n := raw.(type) {
		case float64:
			return n, ""
		case float32:
			return float64(n), ""
		case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
			v, _ := convert(kInt, dv)
			return float64(v.(int64)), ""
		}
	}
	return nil, fmt.Sprintf("wrong type: %s, want %s", strings.TrimPrefix(dv.Value.Type().String(), "TypeID"), k)
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

func (s *snapshot) float(tag string) float64 {
	v, _ := s.values[tag].(float64)
	return v
}

// floatp is tag's value, nil when it could not be read (unknown).
func (s *snapshot) floatp(tag string) *float64 {
	if v, ok := s.values[tag].(float64); ok {
		return &v
	}
	return nil
}

// boolp is tag's value, nil when it could not be read (unknown).
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

// cycle builds the data of a cycle event from the result block.
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
	use("Result.Vin", "Result.Model", "Result.Variant", "Result.Colour", "Result.Status", "Result.StartTime", "Result.EndTime")
	if s.good("Result.StartTime") {
		c.StartedAt = msTime(s.int("Result.StartTime"))
	}
	slot := func(prefix string, i int, suffix string) string { return fmt.Sprintf("%s%d.%s", prefix, i, suffix) }
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
		j := event.Joint{Joint: s.str(tags[0]), Tool: s.str(tags[1]), TorqueNm: s.floatp(tags[2]), AngleDeg: s.floatp(tags[3]), OK: s.boolp(tags[4])}
		if j.TorqueNm == nil || j.AngleDeg == nil {
			j.OK = nil // a joint keiline could not read is unknown, never OK
		}
		c.Joints = append(c.Joints, j)
	}
	for i := 1; i <= s.st.Tests; i++ {
		key := slot("Test", i, "Name")
		if s.good(key) && s.str(key) == "" {
			continue
		}
		tags := []string{key, slot("Test", i, "Unit"), slot("Test", i, "Value"), slot("Test", i, "Low"), slot("Test", i, "High"), slot("Test", i, "OK")}
		use(tags...)
		c.Tests = append(c.Tests, event.Test{Name: s.str(tags[0]), Unit: s.str(tags[1]), Value: s.floatp(tags[2]), Low: s.floatp(tags[3]), High: s.floatp(tags[4]), OK: s.boolp(tags[5])})
	}
	c.Bad = s.badList(used)
	return c
}

// state builds the data of a state event.
func (s *snapshot) state(counter uint64) *event.State {
	return &event.State{
		Counter:    counter,
		State:      s.str("State"),
		FaultCode:  int32(s.int("FaultCode")),
		FaultText:  s.str("FaultText"),
		Andon:      s.boolean("Andon"),
		VinPresent: s.str("VinPresent"),
	}
}
