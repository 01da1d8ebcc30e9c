package simulator

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keiline/keiline/internal/vin"
)

// The framing PLC's build manifest (Config.Manifest). The MES downloads the
// next cars into W01's manifest slots: for each, it writes the slot's
// string tags (Vin, Model, Variant, Colour, Options) first and its Seq last,
// and only into a slot whose Seq is 0. When W01 is free it frames the car of
// the filled slot with the lowest Seq above Manifest.LastSeq, sets LastSeq
// to that Seq and empties the slot (Seq 0, strings empty) for the MES to
// fill again. A slot whose Seq is not above LastSeq is stale and emptied.
// An entry that is not a car of the line puts W01 in fault
// FaultCodeManifest until the MES writes the slot's Seq again.

// Logical names of the manifest tags of the framing station.
const (
	// TagManifestLastSeq is the sequence number of the last car framed
	// (Int64, written by the PLC; 0 before the first).
	TagManifestLastSeq = "Manifest.LastSeq"
)

// manifestFields are the tag suffixes of one manifest slot, in tag order:
// Manifest<k>.Seq (Int64, 0 = empty) and its strings. Options is a
// comma-separated list of option codes, possibly empty.
var manifestFields = []tagSpec{
	{"Seq", kindInt64},
	{"Vin", kindString},
	{"Model", kindString},
	{"Variant", kindString},
	{"Colour", kindString},
	{"Options", kindString},
}

const (
	// manifestStringMax is the longest string a client may write into a
	// manifest slot, in bytes.
	manifestStringMax = 256
	// manifestWritesMax bounds the manifest writes waiting for the plant
	// loop; more are refused with BadResourceUnavailable.
	manifestWritesMax = 4096
)

// manifestTags returns the manifest tags of a framing station with n slots,
// in the order manifestState.values fills them; none when n is 0.
func manifestTags(n int) []tagSpec {
	if n == 0 {
		return nil
	}
	ts := []tagSpec{{TagManifestLastSeq, kindInt64}}
	for k := 1; k <= n; k++ {
		for _, f := range manifestFields {
			ts = append(ts, tagSpec{fmt.Sprintf("Manifest%d.%s", k, f.Name), f.Kind})
		}
	}
	return ts
}

// manifestCar is one manifest entry: a car's sequence number and identity
// as the MES wrote them.
type manifestCar struct {
	Seq     int64  `json:"seq"`
	VIN     string `json:"vin"`
	Model   string `json:"model"`
	Variant string `json:"variant"`
	Colour  string `json:"colour"`
	Options string `json:"options,omitempty"`
}

// check reports why mc is not a car the line builds: a VIN that fails
// vin.Validate, a model code the line does not know, a variant the model
// does not have or an unknown colour.
func (mc manifestCar) check() error {
	if err := vin.Validate(mc.VIN); err != nil {
		return fmt.Errorf("VIN %q: %w", mc.VIN, err)
	}
	m, v := lookupVariant(mc.Model, mc.Variant)
	if m == nil {
		codes := make([]string, len(models))
		for i, m := range models {
			codes[i] = m.Code
		}
		return fmt.Errorf("model %q unknown (want one of %s)", mc.Model, strings.Join(codes, " "))
	}
	if v == nil {
		names := make([]string, len(m.Variants))
		for i, v := range m.Variants {
			names[i] = v.Name
		}
		return fmt.Errorf("model %s has no variant %q (want one of %s)", m.Code, mc.Variant, strings.Join(names, ", "))
	}
	names := make([]string, len(colours))
	for i, c := range colours {
		names[i] = c.Name
	}
	if !slices.Contains(names, mc.Colour) {
		return fmt.Errorf("colour %q unknown (want one of %s)", mc.Colour, strings.Join(names, " "))
	}
	return nil
}

// lookupVariant returns the model with code and its variant with name; nil
// for what the line does not know.
func lookupVariant(code, name string) (*modelDef, *variantDef) {
	for i := range models {
		m := &models[i]
		if m.Code != code {
			continue
		}
		for j := range m.Variants {
			if m.Variants[j].Name == name {
				return m, &m.Variants[j]
			}
		}
		return m, nil
	}
	return nil, nil
}

// manifestState is the framing PLC's retentive manifest.
type manifestState struct {
	LastSeq int64         `json:"last_seq"`
	Slots   []manifestCar `json:"slots"` // slot k is Slots[k-1]; Seq 0 is empty
	// Fault is set while the entry of a slot is not a car of the line.
	Fault *manifestFault `json:"fault,omitempty"`
}

// manifestFault is a bad manifest entry that holds W01 in fault.
type manifestFault struct {
	Slot int    `json:"slot"` // from 1
	Seq  int64  `json:"seq"`
	Text string `json:"text"`
}

// values returns the manifest tags' values in manifestTags order.
func (m *manifestState) values() []any {
	vs := make([]any, 0, 1+len(m.Slots)*len(manifestFields))
	vs = append(vs, m.LastSeq)
	for _, s := range m.Slots {
		vs = append(vs, s.Seq, s.VIN, s.Model, s.Variant, s.Colour, s.Options)
	}
	return vs
}

// apply applies a client's write of value to the manifest tag at offset k
// of manifestTags (LastSeq is not writable). A write of a slot's Seq ends
// a fault of that slot, so the entry is checked again. It reports whether
// the state changed.
func (m *manifestState) apply(k int, value any) bool {
	if k < 1 || k > len(m.Slots)*len(manifestFields) {
		return false
	}
	slot, field := (k-1)/len(manifestFields), (k-1)%len(manifestFields)
	s := &m.Slots[slot]
	old := *s
	switch field {
	case 0:
		s.Seq = value.(int64)
		if m.Fault != nil && m.Fault.Slot == slot+1 {
			m.Fault = nil
			return true
		}
	case 1:
		s.VIN = value.(string)
	case 2:
		s.Model = value.(string)
	case 3:
		s.Variant = value.(string)
	case 4:
		s.Colour = value.(string)
	case 5:
		s.Options = value.(string)
	}
	return *s != old
}

// next returns the slot (from 1) of the next car to frame: the filled slot
// with the lowest Seq above LastSeq (the lowest slot among equals), or 0
// when there is none. It empties stale slots (Seq not above LastSeq) and
// reports whether it did.
func (m *manifestState) next() (slot int, changed bool) {
	for k := range m.Slots {
		s := &m.Slots[k]
		switch {
		case s.Seq == 0:
		case s.Seq <= m.LastSeq:
			*s = manifestCar{}
			changed = true
		case slot == 0 || s.Seq < m.Slots[slot-1].Seq:
			slot = k + 1
		}
	}
	return slot, changed
}

// resize makes the manifest n slots long. It returns an error if a slot it
// would drop is filled.
func (m *manifestState) resize(n int) error {
	for k := n; k < len(m.Slots); k++ {
		if m.Slots[k].Seq != 0 {
			return fmt.Errorf("manifest slot %d holds seq %d but the plant has %d slots (ManifestSlots)", k+1, m.Slots[k].Seq, n)
		}
	}
	if m.Fault != nil && m.Fault.Slot > n {
		m.Fault = nil
	}
	if n < len(m.Slots) {
		m.Slots = m.Slots[:n]
	}
	for len(m.Slots) < n {
		m.Slots = append(m.Slots, manifestCar{})
	}
	return nil
}
