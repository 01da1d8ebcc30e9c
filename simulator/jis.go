package simulator

import (
	"fmt"
	"slices"
	"strings"
)

// Just-in-sequence (JIS) parts (Config.JIS). The MES broadcasts, as each
// car passes the broadcast point T01, the part variant the car needs to
// each JIS supplier; the suppliers deliver the parts to the plant's
// receiving dock (Plant.Deliver) in broadcast order. Each delivered part
// goes onto its supplier's rack at the install station, in arrival order.
//
// The plant's own engineering data says which supplier's part each install
// station fits and which variant a car needs (jisSuppliers). When a car's
// cycle at an install station is done, the station takes the car's part
// from the rack: the first part whose VIN is the car's (normally the head
// of the rack). Without one the station waits, state starved with fault
// text "waiting for JIS <supplier> part", until it is delivered. The
// station's result shows the delivered part (part number and serial as
// delivered, no lot, the plant's supplier name for that part) and a
// pass/fail test "JIS <supplier> variant": a part of another variant than
// the car needs is installed but fails the test, so the car is NOK, visits
// the rework bay R01 and gets a replacement there (part number
// <prefix>-<needed variant>, serial R01-<supplier>-<VIN>) with a passing
// re-test.
//
// Racks, the highest Seq received per supplier and the parts installed in
// the cars still on the line are retentive. Deliver returns only once the
// part is saved; a part whose Seq is not above the highest Seq its
// supplier delivered before is a redelivery and is ignored.

// JIS supplier ids, as in the MES broadcast.
const (
	JISSupplierCockpit = "cockpit"
	JISSupplierBattery = "battery"
	JISSupplierSeats   = "seats"
)

// FaultTextWaitingJIS is the fault text format (with the supplier id) of an
// install station whose car's JIS part is not on its rack; the state is
// starved and the fault code 0.
const FaultTextWaitingJIS = "waiting for JIS %s part"

// JISRackMax is the most parts a supplier's rack holds; a delivery to a
// full rack is refused.
const JISRackMax = 1000

// jisStringMax is the longest string field of a delivered part, in bytes.
const jisStringMax = 256

// JISPart is one part a JIS supplier delivers to the plant.
type JISPart struct {
	// Supplier is the supplier's id: JISSupplierCockpit, JISSupplierBattery
	// or JISSupplierSeats.
	Supplier string `json:"supplier"`
	// Seq is the broadcast's sequence number, per supplier, from 1.
	Seq int64 `json:"seq"`
	// VIN is the car the part is for.
	VIN string `json:"vin"`
	// PartNumber is the part number as delivered ("SEAT-KV-red"); the
	// station's result shows it.
	PartNumber string `json:"part_number"`
	// Variant is the part variant as delivered ("KV-red"); the station
	// checks it against the variant the car needs.
	Variant string `json:"variant"`
	// Serial is the part's serial; the station's result shows it.
	Serial string `json:"serial"`
}

// jisSupplierDef is the plant's engineering data of one JIS supplier.
type jisSupplierDef struct {
	Name    string   // supplier id, as in the broadcast
	Prefix  string   // part number prefix
	Station string   // install station
	Models  []string // models that get the part; nil: every model
	// Supplier is the supplier name the plant's results show for the part
	// (as in non-JIS mode).
	Supplier string
	// variant is the part variant a car needs.
	variant func(c *carPlan) string
	test    *testDef
}

// jisSuppliers are the line's JIS suppliers, in line order of their install
// stations.
var jisSuppliers = []*jisSupplierDef{
	{Name: JISSupplierCockpit, Prefix: "CPM", Station: "T03", Supplier: supCockpit,
		variant: func(c *carPlan) string { return c.Model + "-" + c.Variant }},
	{Name: JISSupplierBattery, Prefix: "BAT", Station: "C01", Models: []string{"KE"}, Supplier: supBattery,
		variant: func(c *carPlan) string { return c.Model + "-" + c.Variant }},
	{Name: JISSupplierSeats, Prefix: "SEAT", Station: "F01", Supplier: supSeat,
		variant: func(c *carPlan) string { return c.Model + "-" + c.Colour }},
}

func init() {
	for _, s := range jisSuppliers {
		s.test = passFail("JIS " + s.Name + " variant")
	}
}

// fits reports whether a car of model gets the supplier's part.
func (s *jisSupplierDef) fits(model string) bool {
	return s.Models == nil || slices.Contains(s.Models, model)
}

// jisSupplierByName returns the supplier with id name, or nil.
func jisSupplierByName(name string) *jisSupplierDef {
	for _, s := range jisSuppliers {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// jisSupplierAt returns the supplier whose part station i installs, or nil.
func jisSupplierAt(i int) *jisSupplierDef {
	for _, s := range jisSuppliers {
		if s.Station == line[i].ID {
			return s
		}
	}
	return nil
}

func jisSupplierNames() string {
	names := make([]string, len(jisSuppliers))
	for i, s := range jisSuppliers {
		names[i] = s.Name
	}
	return strings.Join(names, " ")
}

// stationSlots returns station i's slot counts: each install station of a
// JIS part has one test slot more (the variant check) and R01 has a part
// slot and a test slot more per JIS supplier (replacement and re-test);
// without JIS mode they stay empty.
func stationSlots(i int, _ bool) (parts, joints, tests int) {
	def := line[i]
	parts, joints, tests = def.Parts, def.Joints, def.Tests
	// The PLCs always have the JIS slots; without JIS they stay empty.
	if jisSupplierAt(i) != nil {
		tests++
	}
	if def.ID == reworkStation {
		parts += len(jisSuppliers)
		tests += len(jisSuppliers)
	}
	return
}

// check reports what is wrong with a delivered part.
func (d JISPart) check() error {
	if jisSupplierByName(d.Supplier) == nil {
		return fmt.Errorf("unknown supplier %q (want one of %s)", d.Supplier, jisSupplierNames())
	}
	if d.Seq < 1 {
		return fmt.Errorf("supplier %s: seq %d: want 1 or more", d.Supplier, d.Seq)
	}
	if d.VIN == "" {
		return fmt.Errorf("supplier %s seq %d: no VIN", d.Supplier, d.Seq)
	}
	for _, f := range []struct{ name, v string }{{"VIN", d.VIN}, {"PartNumber", d.PartNumber}, {"Variant", d.Variant}, {"Serial", d.Serial}} {
		if len(f.v) > jisStringMax {
			return fmt.Errorf("supplier %s seq %d: %s of %d bytes: at most %d", d.Supplier, d.Seq, f.name, len(f.v), jisStringMax)
		}
	}
	return nil
}

// jisState is the retentive JIS memory of the plant.
type jisState struct {
	// From is the first car framed in JIS mode since it was last turned
	// on; 0 while the plant runs without JIS mode. Cars framed before keep
	// the parts of their own the install stations give them.
	From int `json:"from"`
	// Racks are the parts delivered and not yet installed, per supplier,
	// in arrival order.
	Racks map[string][]JISPart `json:"racks"`
	// LastSeq is the highest Seq received per supplier.
	LastSeq map[string]int64 `json:"last_seq"`
	// Installed are the parts installed in each car a station still holds
	// or has a result of, by car index.
	Installed map[int][]JISPart `json:"installed,omitempty"`
}

func (j *jisState) init() {
	if j.Racks == nil {
		j.Racks = make(map[string][]JISPart)
	}
	if j.LastSeq == nil {
		j.LastSeq = make(map[string]int64)
	}
	if j.Installed == nil {
		j.Installed = make(map[int][]JISPart)
	}
}

// deliver puts d on its supplier's rack. It reports whether the state
// changed (false for a redelivery).
func (j *jisState) deliver(d JISPart) (bool, error) {
	if d.Seq <= j.LastSeq[d.Supplier] {
		return false, nil
	}
	if len(j.Racks[d.Supplier]) >= JISRackMax {
		return false, fmt.Errorf("simulator: deliver %s seq %d: rack full (%d parts)", d.Supplier, d.Seq, JISRackMax)
	}
	j.Racks[d.Supplier] = append(j.Racks[d.Supplier], d)
	j.LastSeq[d.Supplier] = d.Seq
	return true, nil
}

// installed returns the part of supplier installed in car index, or nil.
func (j *jisState) installed(index int, supplier string) *JISPart {
	for k, p := range j.Installed[index] {
		if p.Supplier == supplier {
			return &j.Installed[index][k]
		}
	}
	return nil
}

// take removes the first part for vin from supplier's rack and records it
// as installed in car index. It returns the part's position in the rack (0:
// the head, as in sequence), or -1 when there is none.
func (j *jisState) take(supplier, vin string, index int) int {
	rack := j.Racks[supplier]
	k := slices.IndexFunc(rack, func(p JISPart) bool { return p.VIN == vin })
	if k < 0 {
		return -1
	}
	p := rack[k]
	j.Racks[supplier] = slices.Delete(rack, k, k+1)
	j.Installed[index] = append(j.Installed[index], p)
	return k
}

// jisNeed returns the supplier whose part station i must install in car
// index before it can finish its cycle, or nil.
func (e *engine) jisNeed(i, index int) *jisSupplierDef {
	if !e.cfg.JIS {
		return nil
	}
	s := jisSupplierAt(i)
	if s == nil || !e.planner.jisCar(index) || !s.fits(e.mustPlan(index).Model) || e.st.JIS.installed(index, s.Name) != nil {
		return nil
	}
	return s
}

// jisInstall takes car index's part of supplier s from the rack at
// station i and rebuilds the car's plan with it. It reports whether the
// part was there.
func (e *engine) jisInstall(i, index int, s *jisSupplierDef) bool {
	plan := e.mustPlan(index)
	at := e.st.JIS.take(s.Name, plan.VIN, index)
	if at < 0 {
		return false
	}
	if at > 0 {
		e.log.Warn("JIS part out of sequence: parts for other cars ahead of it on the rack", "station", line[i].ID,
			"supplier", s.Name, "vin", plan.VIN, "position", at)
	}
	delete(e.plans, index)
	plan = e.mustPlan(index)
	got := e.st.JIS.installed(index, s.Name)
	if want := s.variant(plan); got.Variant != want {
		e.log.Warn("wrong JIS part installed", "station", line[i].ID, "supplier", s.Name, "vin", plan.VIN,
			"seq", got.Seq, "variant", got.Variant, "want", want)
	} else {
		e.log.Debug("JIS part installed", "station", line[i].ID, "supplier", s.Name, "vin", plan.VIN, "seq", got.Seq)
	}
	return true
}

// TruthJIS is a JIS part in the truth file: at an install station the part
// delivered and installed, at R01 the replacement of a wrong one.
type TruthJIS struct {
	Supplier   string `json:"supplier"`
	Seq        int64  `json:"seq,omitempty"` // the delivery's; 0 for a replacement
	PartNumber string `json:"part_number"`
	Variant    string `json:"variant"` // as delivered
	Serial     string `json:"serial"`
	Want       string `json:"want"` // the variant the car needs
	OK         bool   `json:"ok"`   // Variant is Want
	// Replaces is the serial of the wrong part a replacement replaces.
	Replaces string `json:"replaces,omitempty"`
}

// jisCar reports whether car index is built in JIS mode.
func (p *planner) jisCar(index int) bool {
	return p.jisFrom > 0 && index >= p.jisFrom
}

// applyJIS puts the JIS parts installed in c into its results: the part
// and the variant test at the install station.
func (p *planner) applyJIS(c *carPlan) {
	if p.jisInstalls == nil {
		return
	}
	for _, d := range p.jisInstalls(c.Index) {
		s := jisSupplierByName(d.Supplier)
		if s == nil || !s.fits(c.Model) {
			continue
		}
		res := &c.results[stationIndex[s.Station]]
		want := s.variant(c)
		ok := d.Variant == want
		res.Parts = append(res.Parts, Part{PartNumber: d.PartNumber, Serial: d.Serial, Supplier: s.Supplier})
		t := s.test.okTest(nil)
		if !ok {
			t = s.test.nokTest(nil)
		}
		res.Tests = append(res.Tests, t)
		res.jis = append(res.jis, TruthJIS{Supplier: s.Name, Seq: d.Seq, PartNumber: d.PartNumber, Variant: d.Variant,
			Serial: d.Serial, Want: want, OK: ok})
	}
}

// jisRework adds to R01's result rw the replacement of the wrong JIS part
// whose failed variant test is t, found in res.
func jisRework(c *carPlan, res *stationResult, t Test, rw *stationResult) {
	for _, s := range jisSuppliers {
		if t.def != s.test {
			continue
		}
		var old TruthJIS
		for _, j := range res.jis {
			if j.Supplier == s.Name {
				old = j
			}
		}
		want := s.variant(c)
		rp := Part{PartNumber: s.Prefix + "-" + want, Serial: "R01-" + s.Name + "-" + c.VIN, Supplier: s.Supplier}
		rw.Parts = append(rw.Parts, rp)
		rw.jis = append(rw.jis, TruthJIS{Supplier: s.Name, PartNumber: rp.PartNumber, Variant: want, Serial: rp.Serial,
			Want: want, OK: true, Replaces: old.Serial})
	}
}
