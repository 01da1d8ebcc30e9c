package rules

import (
	"sort"
	"strconv"
	"strings"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// A value keiline could not read is never a pass (DESIGN.md, "People and
// machines in one record"): a joint, test or part of a cycle with an
// unknown value holds the car (schema.HoldUnknown, one hold per item)
// until a later cycle of the car reports the same item with a known
// value.

// Unknown is a joint, test or part of a cycle whose value keiline could not
// read: a nil torque, angle, test value or verdict, or a PLC tag of its
// slot named in the cycle's bad values.
type Unknown struct {
	Item schema.Item
	// What are the values that are nil: torque, angle, value, verdict.
	What []string
	// Bad are the PLC tags of its slot that could not be used.
	Bad []event.BadValue
}

// slotTag is where a PLC tag of a cycle's result block belongs: the item
// kind and slot of "Joint3.TorqueNm" (joint, 3) and its field (TorqueNm).
func slotTag(tag string) (kind string, slot int, field string, ok bool) {
	for prefix, k := range map[string]string{"Joint": schema.ItemJoint, "Test": schema.ItemTest, "Part": schema.ItemPart} {
		rest, found := strings.CutPrefix(tag, prefix)
		if !found {
			continue
		}
		num, field, found := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if !found || err != nil || n < 1 || strconv.Itoa(n) != num {
			return "", 0, "", false
		}
		return k, n, field, true
	}
	return "", 0, "", false
}

type slotKey struct {
	kind string
	slot int
}

// Unknowns returns the items of c with a value keiline could not read, in
// the order joints, tests, parts and by slot. A slot is the item's place
// (from 1) in the cycle's list, the PLC's slot number of a contiguous
// result block (docs/plc-tags.md: JointN.*, TestN.*, PartN.*); a bad tag
// of a slot past the list is an item of unknown name.
func Unknowns(c *event.Cycle) []Unknown {
	bad := map[slotKey][]event.BadValue{}
	for _, bv := range c.Bad {
		if kind, slot, _, ok := slotTag(bv.Tag); ok {
			k := slotKey{kind, slot}
			bad[k] = append(bad[k], bv)
		}
	}
	var out []Unknown
	add := func(kind, name string, slot int, what []string) {
		k := slotKey{kind, slot}
		bs := bad[k]
		if len(what) == 0 && len(bs) == 0 {
			return
		}
		for _, bv := range bs {
			if _, _, field, _ := slotTag(bv.Tag); field == "Name" || field == "PartNumber" {
				name = "" // the name itself could not be read
			}
		}
		out = append(out, Unknown{Item: schema.Item{Kind: kind, Name: name, Slot: slot}, What: what, Bad: bs})
		delete(bad, k)
	}
	// A torque, a test value or a verdict that is nil is unknown: the tag
	// map cannot leave them out. A nil angle is unknown only when the agent
	// named its tag bad: without that, the station measures no angle (the
	// tag map has it absent), which is no hold.
	read := func(kind string, slot int, field string) bool {
		for _, bv := range bad[slotKey{kind, slot}] {
			if _, _, f, _ := slotTag(bv.Tag); f == field {
				return false
			}
		}
		return true
	}
	for i, j := range c.Joints {
		var what []string
		if j.TorqueNm == nil {
			what = append(what, "torque")
		}
		if j.AngleDeg == nil && !read(schema.ItemJoint, i+1, "AngleDeg") {
			what = append(what, "angle")
		}
		if j.OK == nil {
			what = append(what, "verdict")
		}
		add(schema.ItemJoint, j.Joint, i+1, what)
	}
	for i, x := range c.Tests {
		var what []string
		if x.Value == nil {
			what = append(what, "value")
		}
		if x.OK == nil {
			what = append(what, "verdict")
		}
		add(schema.ItemTest, x.Name, i+1, what)
	}
	for i, p := range c.Parts {
		add(schema.ItemPart, p.PartNumber, i+1, nil)
	}
	// Bad tags of slots the cycle has no item for.
	rest := make([]slotKey, 0, len(bad))
	for k := range bad {
		rest = append(rest, k)
	}
	order := map[string]int{schema.ItemJoint: 0, schema.ItemTest: 1, schema.ItemPart: 2}
	sort.Slice(rest, func(a, b int) bool {
		if rest[a].kind != rest[b].kind {
			return order[rest[a].kind] < order[rest[b].kind]
		}
		return rest[a].slot < rest[b].slot
	})
	for _, k := range rest {
		add(k.kind, "", k.slot, nil)
	}
	return out
}

// Reason is the reason of the hold u puts on its car at station: the
// station, the item and its slot, the values unknown, and each PLC tag
// with its node and why its value could not be used (the PLC's status).
func (u Unknown) Reason(station string) string {
	var parts []string
	if len(u.What) > 0 {
		parts = append(parts, strings.Join(u.What, ", ")+" unknown")
	}
	for _, bv := range u.Bad {
		parts = append(parts, "tag "+bv.Tag+" (node "+bv.NodeID+"): "+bv.Reason)
	}
	if len(u.Bad) == 0 {
		parts = append(parts, "the station gave no value")
	}
	item := u.Item.String()
	if u.Item.Name != "" {
		item += " (slot " + strconv.Itoa(u.Item.Slot) + ")"
	}
	return "unknown at " + station + ": " + item + ": " + strings.Join(parts, "; ")
}

// Reports reports whether cycle c at station, whose unknown items are
// unknowns (Unknowns(c)), reports the item that hold h waits for with a
// known value: the same joint, test or part by name, or, when the name was
// unknown, the same slot at the hold's station (a re-test).
func Reports(c *event.Cycle, unknowns []Unknown, station string, h schema.Hold) bool {
	it := h.Item
	unknown := func(slot int) bool {
		for _, u := range unknowns {
			if u.Item.Kind == it.Kind && u.Item.Slot == slot {
				return true
			}
		}
		return false
	}
	match := func(name string, slot int) bool {
		if it.Name != "" {
			return name == it.Name && !unknown(slot)
		}
		return station == h.Station && slot == it.Slot && !unknown(slot)
	}
	switch it.Kind {
	case schema.ItemJoint:
		for i, j := range c.Joints {
			if match(j.Joint, i+1) {
				return true
			}
		}
	case schema.ItemTest:
		for i, x := range c.Tests {
			if match(x.Name, i+1) {
				return true
			}
		}
	case schema.ItemPart:
		for i, p := range c.Parts {
			if match(p.PartNumber, i+1) {
				return true
			}
		}
	}
	return false
}
