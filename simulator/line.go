package simulator

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/keiline/keiline/internal/vin"
)

// The default line of LINE.md: its stations, models, colours and what each
// station builds into a car. Everything a station reports for a car is a
// pure function of the plant seed, the car index and the station, so a
// cycle redone after a crash reports the same values.

const (
	// ModelYear is the model year stamped into every VIN.
	ModelYear = 2027
	// PlantCode is the VIN plant code (position 11).
	PlantCode = 'U'

	// jointAngleLow and jointAngleHigh are the angle window (degrees) of
	// every joint; a joint outside it is NOK.
	jointAngleLow  = 15.0
	jointAngleHigh = 75.0
	// jointTolerance is the torque tolerance of every joint as a fraction
	// of its nominal torque.
	jointTolerance = 0.10
	// jointNOKRate and testNOKRate are the share of NOK joints and tests.
	jointNOKRate = 0.003
	testNOKRate  = 0.002

	// reworkTool is the tool of every joint re-tightened at R01.
	reworkTool = "R01-T1"
	// reworkJointSlots and reworkTestSlots are R01's slot counts. A car
	// never has more NOK joints or tests than these: past them the
	// generator makes joints and tests OK.
	reworkJointSlots = 16
	reworkTestSlots  = 8
)

// Station ids with a role in routing.
const (
	framingStation = "W01"
	reworkStation  = "R01"
)

// stationDef is one station of the line.
type stationDef struct {
	ID, Name, Zone       string
	Parts, Joints, Tests int  // slot counts: the most the station ever uses
	Optional             bool // visited only by some cars (R01)
	build                func(g *gen)
}

// line is the default line in line order. R01 sits between Q04 and Q05; only
// cars with a NOK visit it.
var line = []stationDef{
	{ID: "W01", Name: "Body framing, VIN stamp", Zone: "body", Parts: 1, build: buildW01},
	{ID: "W02", Name: "Body inspection", Zone: "body", Tests: 8, build: buildW02},
	{ID: "P01", Name: "Paint", Zone: "paint", Parts: 2, Tests: 1, build: buildP01},
	{ID: "P02", Name: "Paint inspection", Zone: "paint", Tests: 1, build: buildP02},
	{ID: "T01", Name: "Trim in — broadcast point", Zone: "trim", build: func(*gen) {}},
	{ID: "T02", Name: "Wiring harness", Zone: "trim", Parts: 1, Tests: 1, build: buildT02},
	{ID: "T03", Name: "Cockpit module (JIS)", Zone: "trim", Parts: 1, Joints: 4, build: buildT03},
	{ID: "T04", Name: "Windshield and headliner", Zone: "trim", Parts: 1, Tests: 1, build: buildT04},
	{ID: "C01", Name: "Powertrain marriage", Zone: "chassis", Parts: 2, Joints: 6, build: buildC01},
	{ID: "C02", Name: "Suspension and axles", Zone: "chassis", Parts: 3, Joints: 8, build: buildC02},
	{ID: "C03", Name: "Brake and fuel lines", Zone: "chassis", Parts: 1, Joints: 4, Tests: 1, build: buildC03},
	{ID: "C04", Name: "Wheels", Zone: "chassis", Parts: 1, Joints: 16, build: buildC04},
	{ID: "F01", Name: "Seats (JIS)", Zone: "final", Parts: 3, Joints: 8, build: buildF01},
	{ID: "F02", Name: "Doors", Zone: "final", Joints: 8, Tests: 4, build: buildF02},
	{ID: "F03", Name: "Fluid fill", Zone: "final", Parts: 2, Tests: 2, build: buildF03},
	{ID: "F04", Name: "ECU flashing", Zone: "final", Parts: 1, Tests: 2, build: buildF04},
	{ID: "Q01", Name: "Wheel alignment", Zone: "quality", Tests: 4, build: buildQ01},
	{ID: "Q02", Name: "Roller and brake test", Zone: "quality", Tests: 3, build: buildQ02},
	{ID: "Q03", Name: "Headlamp aim", Zone: "quality", Tests: 4, build: buildQ03},
	{ID: "Q04", Name: "Water leak test", Zone: "quality", Tests: 1, build: buildQ04},
	{ID: "R01", Name: "Rework bay (off-line)", Zone: "rework", Joints: reworkJointSlots, Tests: reworkTestSlots, Optional: true},
	{ID: "Q05", Name: "Final inspection — quality gate", Zone: "quality", build: func(*gen) {}},
	{ID: "S01", Name: "Shipping", Zone: "ship", build: func(*gen) {}},
}

// stationIndex maps a station id to its index in line.
var stationIndex = func() map[string]int {
	m := make(map[string]int, len(line))
	for i, s := range line {
		m[s.ID] = i
	}
	return m
}()

// Models, variants and colours.
type modelDef struct {
	Code     string
	Share    float64
	Body     byte // VIN descriptor body digit
	Variants []variantDef
}

type variantDef struct {
	Name          string
	Code          string // two VIN descriptor characters
	Share         float64
	FourWD, Turbo bool
}

var models = []modelDef{
	{Code: "KV", Share: 0.30, Body: '2', Variants: []variantDef{
		{Name: "2WD", Code: "2W", Share: 0.6}, {Name: "4WD", Code: "4W", Share: 0.4, FourWD: true}}},
	{Code: "KW", Share: 0.35, Body: '1', Variants: []variantDef{
		{Name: "NA", Code: "NA", Share: 0.6}, {Name: "Turbo", Code: "TB", Share: 0.4, Turbo: true}}},
	{Code: "KT", Share: 0.15, Body: '3', Variants: []variantDef{
		{Name: "4WD", Code: "4W", Share: 1, FourWD: true}}},
	{Code: "KE", Share: 0.20, Body: '4', Variants: []variantDef{
		{Name: "standard", Code: "SR", Share: 0.6}, {Name: "long range", Code: "LR", Share: 0.4}}},
}

var colours = []struct {
	Name  string
	Share float64
}{
	{"white", 0.30}, {"silver", 0.20}, {"black", 0.15}, {"red", 0.10}, {"blue", 0.10}, {"mint", 0.15},
}

// Part is one part a station installed in a car, as its result block and
// the truth file show it. A lot-traced part has no serial.
type Part struct {
	PartNumber string `json:"part_number"`
	Serial     string `json:"serial"`
	Lot        string `json:"lot"`
	Supplier   string `json:"supplier"`
}

// Joint is one torque-controlled joint a station made.
type Joint struct {
	Name     string  `json:"joint"`
	Tool     string  `json:"tool"`
	TorqueNm float64 `json:"torque_nm"`
	AngleDeg float64 `json:"angle_deg"`
	OK       bool    `json:"ok"`

	nominal float64 // nominal torque, for rework
}

// Test is one test a station made: the measured value with its limits. A
// pass/fail test has unit "pass/fail", value 1 (pass) or 0, limits 1..1.
type Test struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
	OK    bool    `json:"ok"`

	def *testDef // for rework
}

// stationResult is what one station did to one car.
type stationResult struct {
	Parts  []Part
	Joints []Joint
	Tests  []Test

	jis []TruthJIS // JIS parts (Config.JIS), for the truth file
	// unreadable are the joints (0-based) whose torque tag reads with bad
	// quality while this result is shown (Config.BadValueRate).
	unreadable []int
}

// status is "OK" unless a joint or test is NOK.
func (r *stationResult) status() string {
	for _, j := range r.Joints {
		if !j.OK {
			return "NOK"
		}
	}
	for _, t := range r.Tests {
		if !t.OK {
			return "NOK"
		}
	}
	return "OK"
}

// carPlan is everything the line builds into one car.
type carPlan struct {
	Index   int
	VIN     string
	Model   string
	Variant string
	Colour  string
	Seq     int64 // manifest sequence number; 0 for a car the plant made up
	variant variantDef
	results []stationResult // by station index
	nok     bool            // some joint or test is NOK: the car visits R01
}

// route returns the index of the station after station i for this car, or
// len(line) when the car leaves the line.
func (c *carPlan) route(i int) int {
	next := i + 1
	if next < len(line) && line[next].Optional && !c.nok {
		next++
	}
	return next
}

// visits returns the station indexes the car visits, in order.
func (c *carPlan) visits() []int {
	var v []int
	for i := 0; i < len(line); i = c.route(i) {
		v = append(v, i)
	}
	return v
}

// planner builds car plans for one seed. It caches the lot boundaries of
// each part; it is not safe for concurrent use.
type planner struct {
	seed int64
	wmi  string
	lots map[string]*lotStream

	// jisFrom is the first car built in JIS mode (Config.JIS), 0 for none:
	// the install stations build into such a car the JIS parts delivered
	// for it, given by jisInstalls, instead of their own.
	jisFrom     int
	jisInstalls func(index int) []JISPart
	// enumerate, when set, collects each part number's lot code instead
	// of making lots (lotRanks).
	enumerate map[string]string
	// badRate is Config.BadValueRate: the share of station results with
	// joints of which one joint's torque cannot be read.
	badRate float64
	// torque is Config.Torque: the controllers make the joints of their
	// stations (torque.go), which build none into the plan.
	torque bool
	// drift is Config.Drift (drift.go).
	drift *TorqueDrift
}

func newPlanner(seed int64, wmi string) *planner {
	return &planner{seed: seed, wmi: wmi, lots: make(map[string]*lotStream)}
}

// rngFor returns a random source that depends only on the seed and keys.
func rngFor(seed int64, keys ...any) *rand.Rand {
	h1 := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h1.Write(b[:])
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			h1.Write([]byte(k))
			h1.Write([]byte{0})
		case int:
			binary.LittleEndian.PutUint64(b[:], uint64(k))
			h1.Write(b[:])
		default:
			panic(fmt.Sprintf("rngFor: key of type %T", k))
		}
	}
	s := h1.Sum64()
	return rand.New(rand.NewPCG(splitmix(s), splitmix(s^0x9e3779b97f4a7c15)))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// pick returns the index chosen by u in [0,1) from the shares.
func pick(u float64, shares []float64) int {
	for i, s := range shares {
		if u < s {
			return i
		}
		u -= s
	}
	return len(shares) - 1
}

// plan builds car index (from 1), its identity drawn from the seed.
func (p *planner) plan(index int) (*carPlan, error) {
	r := rngFor(p.seed, "car", index)
	ms := make([]float64, len(models))
	for i, m := range models {
		ms[i] = m.Share
	}
	m := models[pick(r.Float64(), ms)]
	vs := make([]float64, len(m.Variants))
	for i, v := range m.Variants {
		vs[i] = v.Share
	}
	v := m.Variants[pick(r.Float64(), vs)]
	cs := make([]float64, len(colours))
	for i, c := range colours {
		cs[i] = c.Share
	}
	colour := colours[pick(r.Float64(), cs)].Name

	descriptor := m.Code + string(m.Body) + v.Code
	id, err := vin.Make(p.wmi, descriptor, ModelYear, PlantCode, index)
	if err != nil {
		return nil, fmt.Errorf("car %d: %w", index, err)
	}
	return p.build(&carPlan{Index: index, VIN: id, Model: m.Code, Variant: v.Name, Colour: colour, variant: v}), nil
}

// planManifest builds car index (from 1) with the identity the MES wrote
// into the manifest; what the stations build into it is drawn from the
// seed and the index as for any car. It returns an error if mc is not a
// car of the line (see manifestCar.check).
func (p *planner) planManifest(index int, mc manifestCar) (*carPlan, error) {
	if err := mc.check(); err != nil {
		return nil, fmt.Errorf("car %d seq %d: %w", index, mc.Seq, err)
	}
	_, v := lookupVariant(mc.Model, mc.Variant)
	return p.build(&carPlan{Index: index, VIN: mc.VIN, Model: mc.Model, Variant: mc.Variant, Colour: mc.Colour,
		Seq: mc.Seq, variant: *v}), nil
}

// build works out what each station builds into c, whose identity is set.
func (p *planner) build(c *carPlan) *carPlan {
	index := c.Index
	c.results = make([]stationResult, len(line))
	g := &gen{p: p, car: c}
	for i, st := range line {
		if st.Optional {
			continue
		}
		g.station = st.ID
		g.r = rngFor(p.seed, "result", index, st.ID)
		g.res = &c.results[i]
		st.build(g)
		if g.res.status() == "NOK" {
			c.nok = true
		}
	}
	if p.jisCar(index) {
		p.applyJIS(c)
		for i := range c.results {
			if c.results[i].status() == "NOK" {
				c.nok = true
			}
		}
	}
	p.unreadable(c)
	// R01 redoes every NOK joint and test, and every joint whose torque
	// could not be read, in line order.
	ri := stationIndex[reworkStation]
	rr := rngFor(p.seed, "result", index, reworkStation)
	rw := &c.results[ri]
	for i := range c.results {
		if i == ri {
			continue
		}
		for k, j := range c.results[i].Joints {
			if !j.OK || slices.Contains(c.results[i].unreadable, k) {
				rw.Joints = append(rw.Joints, okJoint(rr, j.Name, reworkTool, j.nominal))
			}
		}
		for _, t := range c.results[i].Tests {
			if !t.OK {
				rw.Tests = append(rw.Tests, t.def.okTest(rr))
				jisRework(c, &c.results[i], t, rw)
			}
		}
	}
	return c
}

// unreadable picks, at the share badRate of the stations with joints, one
// joint whose torque the PLC cannot read (a sensor fault): the MES records
// it as unknown and holds the car, and the rework bay redoes the joint, so
// the car visits R01.
func (p *planner) unreadable(c *carPlan) {
	if p.badRate <= 0 {
		return
	}
	budget := reworkJointSlots - c.nokJoints()
	for i, st := range line {
		r := &c.results[i]
		if st.Optional || len(r.Joints) == 0 || budget == 0 {
			continue
		}
		rng := rngFor(p.seed, "unreadable", c.Index, st.ID)
		if rng.Float64() >= p.badRate {
			continue
		}
		k := rng.IntN(len(r.Joints))
		if !r.Joints[k].OK {
			continue // redone anyway
		}
		r.unreadable = append(r.unreadable, k)
		c.nok = true
		budget--
	}
}

// gen builds one station's result for one car.
type gen struct {
	p       *planner
	car     *carPlan
	station string
	r       *rand.Rand
	res     *stationResult
}

// Suppliers (fictional).
const (
	supBody    = "SUP-KLN-BODY" // in-house body shop
	supPaint   = "SUP-AOYAMA-COAT"
	supHarness = "SUP-HIKARI-WIRE"
	supCockpit = "SUP-HOKUTO-INT"
	supGlass   = "SUP-KAGAMI-GLASS"
	supEngine  = "SUP-KLN-POWER" // in-house engine plant
	supTurbo   = "SUP-FUJIKAZE"
	supBattery = "SUP-INAZUMA-CELL"
	supChassis = "SUP-TSURUGI-CHASSIS"
	supDrive   = "SUP-KURUMA-DRIVE"
	supTube    = "SUP-MIZUHA-TUBE"
	supTyre    = "SUP-ISHIDAI-TYRE"
	supSeat    = "SUP-SAKURA-SEAT"
	supFluid   = "SUP-NAGARE-CHEM"
	supECU     = "SUP-DENKOU-ELEC"
)

// part adds a part. A serial-traced part gets serial <code>-<model>-<index>;
// every part gets the supplier lot it came from.
func (g *gen) part(number, code, supplier string, serial bool) {
	p := Part{PartNumber: number, Lot: g.p.lot(number, code, g.car.Index), Supplier: supplier}
	if serial {
		p.Serial = fmt.Sprintf("%s-%s-%06d", code, g.car.Model, g.car.Index)
	}
	g.res.Parts = append(g.res.Parts, p)
}

// joints adds n joints named <name>_<k> made with the given tools in turn
// (each tool makes n/len(tools) consecutive joints).
func (g *gen) joints(name string, n int, nominal float64, tools ...string) {
	per := (n + len(tools) - 1) / len(tools)
	for k := 0; k < n; k++ {
		jn := fmt.Sprintf("%s_%d", name, k+1)
		tool := tools[k/per]
		var j Joint
		if g.r.Float64() < jointNOKRate && g.car.nokJoints() < reworkJointSlots {
			j = nokJoint(g.r, jn, tool, nominal)
		} else {
			j = okJoint(g.r, jn, tool, nominal)
		}
		g.drift(&j)
		g.res.Joints = append(g.res.Joints, j)
	}
}

func (c *carPlan) nokJoints() int {
	n := 0
	for _, r := range c.results {
		for _, j := range r.Joints {
			if !j.OK {
				n++
			}
		}
	}
	return n
}

func (c *carPlan) nokTests() int {
	n := 0
	for _, r := range c.results {
		for _, t := range r.Tests {
			if !t.OK {
				n++
			}
		}
	}
	return n
}

// round rounds v to decimals places, as a PLC's display would; a value
// that rounds to zero is +0, never -0.
func round(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p)/p + 0
}

func clamp(v, lo, hi float64) float64 {
	return math.Max(lo, math.Min(hi, v))
}

// jointOK is the tool's verdict on rounded values.
func jointOK(torque, angle, nominal float64) bool {
	return torque >= nominal*(1-jointTolerance) && torque <= nominal*(1+jointTolerance) &&
		angle >= jointAngleLow && angle <= jointAngleHigh
}

func okJoint(r *rand.Rand, name, tool string, nominal float64) Joint {
	t := round(clamp(nominal*(1+0.03*r.NormFloat64()), nominal*0.915, nominal*1.085), 2)
	a := round(clamp(45+9*r.NormFloat64(), jointAngleLow+1, jointAngleHigh-1), 1)
	return Joint{Name: name, Tool: tool, TorqueNm: t, AngleDeg: a, OK: jointOK(t, a, nominal), nominal: nominal}
}

func nokJoint(r *rand.Rand, name, tool string, nominal float64) Joint {
	t := round(clamp(nominal*(1+0.03*r.NormFloat64()), nominal*0.915, nominal*1.085), 2)
	a := round(clamp(45+9*r.NormFloat64(), jointAngleLow+1, jointAngleHigh-1), 1)
	switch k := r.IntN(10); {
	case k < 4: // low torque: loose joint
		t = round(nominal*(1-jointTolerance-0.01-0.08*r.Float64()), 2)
	case k < 7: // high torque: over-tightened
		t = round(nominal*(1+jointTolerance+0.01+0.08*r.Float64()), 2)
	case k < 9: // angle too small: thread not engaged
		a = round(jointAngleLow-1-10*r.Float64(), 1)
	default: // angle too large: stripped thread
		a = round(jointAngleHigh+1+20*r.Float64(), 1)
	}
	return Joint{Name: name, Tool: tool, TorqueNm: t, AngleDeg: a, OK: jointOK(t, a, nominal), nominal: nominal}
}

// testDef is a test with its limits. A pass/fail test reports 1 (pass) or 0
// with limits 1..1.
type testDef struct {
	Name      string
	Unit      string
	Low, High float64
	Nominal   float64
	SD        float64
	Decimals  int
}

func passFail(name string) *testDef {
	return &testDef{Name: name, Unit: "pass/fail", Low: 1, High: 1, Nominal: 1}
}

func (d *testDef) okTest(r *rand.Rand) Test {
	v := d.Nominal
	if d.SD > 0 {
		v = round(clamp(d.Nominal+d.SD*r.NormFloat64(), d.Low, d.High), d.Decimals)
	}
	return Test{Name: d.Name, Value: v, Unit: d.Unit, Low: d.Low, High: d.High, OK: v >= d.Low && v <= d.High, def: d}
}

func (d *testDef) nokTest(r *rand.Rand) Test {
	var v float64
	step := math.Pow10(-d.Decimals)
	switch {
	case d.SD == 0 && d.Low == 1 && d.High == 1 && d.Unit == "pass/fail":
		v = 0
	case d.SD == 0: // an exact value (software version): an older one
		v = round(d.Low-step*float64(1+r.IntN(3)), d.Decimals)
	case r.IntN(2) == 0:
		v = round(d.Low-d.SD*(0.2+math.Abs(r.NormFloat64())), d.Decimals)
		if v >= d.Low {
			v = round(d.Low-step, d.Decimals)
		}
	default:
		v = round(d.High+d.SD*(0.2+math.Abs(r.NormFloat64())), d.Decimals)
		if v <= d.High {
			v = round(d.High+step, d.Decimals)
		}
	}
	return Test{Name: d.Name, Value: v, Unit: d.Unit, Low: d.Low, High: d.High, OK: v >= d.Low && v <= d.High, def: d}
}

// test adds a test of def, NOK at testNOKRate.
func (g *gen) test(d *testDef) {
	if g.r.Float64() < testNOKRate && g.car.nokTests() < reworkTestSlots {
		g.res.Tests = append(g.res.Tests, d.nokTest(g.r))
		return
	}
	g.res.Tests = append(g.res.Tests, d.okTest(g.r))
}

// The stations' content.

func buildW01(g *gen) {
	g.part("BIW-"+g.car.Model, "BIW", supBody, true)
}

var w02Tests = func() []*testDef {
	var ds []*testDef
	for _, pt := range []string{"fl", "fr", "rl", "rr"} {
		ds = append(ds,
			&testDef{Name: "gap_" + pt, Unit: "mm", Low: 3.0, High: 5.0, Nominal: 4.0, SD: 0.25, Decimals: 2},
			&testDef{Name: "flush_" + pt, Unit: "mm", Low: -1.0, High: 1.0, Nominal: 0, SD: 0.25, Decimals: 2})
	}
	return ds
}()

func buildW02(g *gen) {
	for _, d := range w02Tests {
		g.test(d)
	}
}

var filmThickness = &testDef{Name: "film_thickness", Unit: "µm", Low: 90, High: 160, Nominal: 125, SD: 8, Decimals: 1}

func buildP01(g *gen) {
	g.part("PNT-BASE-"+strings.ToUpper(g.car.Colour), "BASE", supPaint, false)
	g.part("PNT-CLEAR-2K", "CLR", supPaint, false)
	g.test(filmThickness)
}

var paintDefects = &testDef{Name: "defects", Unit: "count", Low: 0, High: 2, Nominal: 0, Decimals: 0}

func buildP02(g *gen) {
	d := paintDefects
	if g.r.Float64() < testNOKRate && g.car.nokTests() < reworkTestSlots {
		g.res.Tests = append(g.res.Tests, Test{Name: d.Name, Value: float64(3 + g.r.IntN(4)), Unit: d.Unit, Low: d.Low, High: d.High, def: d})
		return
	}
	v := float64(pick(g.r.Float64(), []float64{0.7, 0.2, 0.1}))
	g.res.Tests = append(g.res.Tests, Test{Name: d.Name, Value: v, Unit: d.Unit, Low: d.Low, High: d.High, OK: true, def: d})
}

var continuity = passFail("continuity")

func buildT02(g *gen) {
	g.part("HRN-"+g.car.Model, "HRN", supHarness, true)
	g.test(continuity)
}

func buildT03(g *gen) {
	if !g.p.jisCar(g.car.Index) { // in JIS mode the cockpit comes from the rack
		g.part("CKP-"+g.car.Model, "CKP", supCockpit, true)
	}
	g.joints("cockpit_m8", 4, 25, "T03-NR1", "T03-NR2")
}

var beadHeight = &testDef{Name: "bead_height", Unit: "mm", Low: 6.5, High: 9.5, Nominal: 8.0, SD: 0.3, Decimals: 2}

func buildT04(g *gen) {
	g.part("WSH-"+g.car.Model, "WSH", supGlass, false)
	g.test(beadHeight)
}

func buildC01(g *gen) {
	switch {
	case g.car.Model == "KE" && g.p.jisCar(g.car.Index): // the battery comes from the rack
	case g.car.Model == "KE" && g.car.Variant == "long range":
		g.part("BAT-29KWH", "BAT", supBattery, true)
	case g.car.Model == "KE":
		g.part("BAT-20KWH", "BAT", supBattery, true)
	case g.car.variant.Turbo:
		g.part("ENG-660-TB", "ENG", supEngine, true)
		g.part("ICL-660-TB", "ICL", supTurbo, true)
	default:
		g.part("ENG-660-NA", "ENG", supEngine, true)
	}
	g.joints("pt_mount", 6, 55, "C01-NR1", "C01-NR2")
}

func buildC02(g *gen) {
	g.part("STR-"+g.car.Model+"-L", "STRL", supChassis, false)
	g.part("STR-"+g.car.Model+"-R", "STRR", supChassis, false)
	if g.car.variant.FourWD {
		g.part("RDU-4WD", "RDU", supDrive, true)
	}
	g.joints("susp_m12", 8, 90, "C02-NR1", "C02-NR2", "C02-NR3", "C02-NR4")
}

var pressureHold = &testDef{Name: "pressure_hold", Unit: "kPa", Low: 1450, High: 1550, Nominal: 1500, SD: 12, Decimals: 1}

func buildC03(g *gen) {
	g.part("BRL-"+g.car.Model, "BRL", supTube, false)
	g.joints("brake_fitting", 4, 18, "C03-NR1")
	g.test(pressureHold)
}

func buildC04(g *gen) {
	tyre := "TYR-145-80R13"
	if g.car.Model == "KT" {
		tyre = "TYR-145R12-LT"
	}
	g.part(tyre, "TYR", supTyre, false)
	if g.p.torque {
		return // the wheel nuts are the controllers' (torque.go)
	}
	for w, wheel := range []string{"fl", "fr", "rl", "rr"} {
		g.joints("lug_"+wheel, 4, 108, fmt.Sprintf("C04-NR%d", w+1))
	}
}

func buildF01(g *gen) {
	if !g.p.jisCar(g.car.Index) { // in JIS mode the seat set comes from the rack
		g.part("SEAT-"+g.car.Model+"-FL", "SFL", supSeat, true)
		g.part("SEAT-"+g.car.Model+"-FR", "SFR", supSeat, true)
		if g.car.Model != "KT" { // the truck has no rear seat
			g.part("SEAT-"+g.car.Model+"-RR", "SRR", supSeat, true)
		}
	}
	if g.p.torque {
		return // the seat bolts are the controllers' (torque.go)
	}
	g.joints("seat_m10", 8, 45, "F01-NR1", "F01-NR2")
}

var doorGaps = func() []*testDef {
	var ds []*testDef
	for _, d := range []string{"fl", "fr", "rl", "rr"} {
		ds = append(ds, &testDef{Name: "door_gap_" + d, Unit: "mm", Low: 3.5, High: 5.5, Nominal: 4.5, SD: 0.25, Decimals: 2})
	}
	return ds
}()

func buildF02(g *gen) {
	g.joints("door_hinge", 8, 30, "F02-NR1", "F02-NR2")
	gaps := doorGaps
	if g.car.Model == "KT" { // two doors
		gaps = gaps[:2]
	}
	for _, d := range gaps {
		g.test(d)
	}
}

var (
	brakeFluidFill = &testDef{Name: "brake_fluid_fill", Unit: "L", Low: 0.55, High: 0.65, Nominal: 0.60, SD: 0.01, Decimals: 3}
	coolantFillICE = &testDef{Name: "coolant_fill", Unit: "L", Low: 3.6, High: 4.0, Nominal: 3.8, SD: 0.05, Decimals: 2}
	coolantFillEV  = &testDef{Name: "coolant_fill", Unit: "L", Low: 5.0, High: 5.6, Nominal: 5.3, SD: 0.07, Decimals: 2}
)

func buildF03(g *gen) {
	g.part("FLD-BRAKE-DOT4", "FBR", supFluid, false)
	if g.car.Model == "KE" {
		g.part("FLD-COOL-EV", "FCE", supFluid, false)
	} else {
		g.part("FLD-COOL-LLC", "FCL", supFluid, false)
	}
	g.test(brakeFluidFill)
	if g.car.Model == "KE" {
		g.test(coolantFillEV)
	} else {
		g.test(coolantFillICE)
	}
}

// softwareVersions is the released ECU software of each model.
var softwareVersions = map[string]*testDef{
	"KV": {Name: "software_version", Unit: "version", Low: 3.2, High: 3.2, Nominal: 3.2, Decimals: 1},
	"KW": {Name: "software_version", Unit: "version", Low: 4.1, High: 4.1, Nominal: 4.1, Decimals: 1},
	"KT": {Name: "software_version", Unit: "version", Low: 2.7, High: 2.7, Nominal: 2.7, Decimals: 1},
	"KE": {Name: "software_version", Unit: "version", Low: 1.8, High: 1.8, Nominal: 1.8, Decimals: 1},
}

var checksum = passFail("checksum")

func buildF04(g *gen) {
	g.part("ECU-"+g.car.Model, "ECU", supECU, true)
	g.test(softwareVersions[g.car.Model])
	g.test(checksum)
}

var alignment = []*testDef{
	{Name: "toe_front", Unit: "deg", Low: -0.10, High: 0.30, Nominal: 0.10, SD: 0.05, Decimals: 2},
	{Name: "toe_rear", Unit: "deg", Low: 0.00, High: 0.40, Nominal: 0.20, SD: 0.05, Decimals: 2},
	{Name: "camber_front", Unit: "deg", Low: -1.25, High: 0.25, Nominal: -0.50, SD: 0.18, Decimals: 2},
	{Name: "camber_rear", Unit: "deg", Low: -1.50, High: 0.00, Nominal: -0.75, SD: 0.18, Decimals: 2},
}

func buildQ01(g *gen) {
	for _, d := range alignment {
		g.test(d)
	}
}

var rollerTests = []*testDef{
	{Name: "brake_force_front", Unit: "N", Low: 2500, High: 4500, Nominal: 3400, SD: 250, Decimals: 0},
	{Name: "brake_force_rear", Unit: "N", Low: 1200, High: 2800, Nominal: 1900, SD: 200, Decimals: 0},
	{Name: "speedometer_error", Unit: "%", Low: -4.0, High: 6.0, Nominal: 2.0, SD: 1.0, Decimals: 1},
}

func buildQ02(g *gen) {
	for _, d := range rollerTests {
		g.test(d)
	}
}

var headlampAim = []*testDef{
	{Name: "aim_left_h", Unit: "%", Low: -1.0, High: 1.0, Nominal: 0, SD: 0.25, Decimals: 2},
	{Name: "aim_left_v", Unit: "%", Low: -2.0, High: -0.5, Nominal: -1.25, SD: 0.2, Decimals: 2},
	{Name: "aim_right_h", Unit: "%", Low: -1.0, High: 1.0, Nominal: 0, SD: 0.25, Decimals: 2},
	{Name: "aim_right_v", Unit: "%", Low: -2.0, High: -0.5, Nominal: -1.25, SD: 0.2, Decimals: 2},
}

func buildQ03(g *gen) {
	for _, d := range headlampAim {
		g.test(d)
	}
}

var waterLeak = passFail("water_leak")

func buildQ04(g *gen) {
	g.test(waterLeak)
}

// lotStream is the sequence of supplier lots of one part: lot k feeds cars
// [ends[k-1], ends[k]).
type lotStream struct {
	r    *rand.Rand
	base int
	ends []int
}

// lotBlock is the lot numbers each part number has to itself: a lot
// changes after 50 cars at least, so CarsMax cars use at most 20,000.
const lotBlock = 20000

// lotRanks gives each lot-coded part number of the line its rank among the
// part numbers that share its lot code (the struts of each model, the base
// coats of each colour), found by building one car of every model, variant
// and colour.
var lotRanks = sync.OnceValue(func() map[string]int { return enumerateLots() })

// enumerateLots computes lotRanks. It is set by init: a function value,
// so that the line's definition (which makes lots) does not depend on
// itself during package initialization.
var enumerateLots func() map[string]int

func init() { enumerateLots = rankLots }

func rankLots() map[string]int {
	p := newPlanner(1, WMIDefault)
	p.enumerate = map[string]string{}
	for _, m := range models {
		for _, v := range m.Variants {
			for _, c := range colours {
				for index := 1; index <= 8; index++ {
					p.build(&carPlan{Index: index, VIN: "ENUMERATE", Model: m.Code, Variant: v.Name, Colour: c.Name, variant: v})
				}
			}
		}
	}
	byCode := map[string][]string{}
	for number, code := range p.enumerate {
		byCode[code] = append(byCode[code], number)
	}
	ranks := map[string]int{}
	for _, numbers := range byCode {
		sort.Strings(numbers)
		for r, n := range numbers {
			ranks[n] = r
		}
	}
	return ranks
}

// lotBase is the first lot number of a part number. Part numbers that share
// a lot code get disjoint blocks, as a supplier numbers its lots once
// across its parts: a lot names one part number's cars only.
func lotBase(number string) int {
	return 100 + lotRanks()[number]*lotBlock
}

// lot returns the supplier lot of part number that car index got. Lots
// change every 50-200 cars, at seeded points.
func (p *planner) lot(number, code string, index int) string {
	if p.enumerate != nil {
		p.enumerate[number] = code
		return ""
	}
	s := p.lots[number]
	if s == nil {
		r := rngFor(p.seed, "lots", number)
		s = &lotStream{r: r, base: lotBase(number)}
		p.lots[number] = s
	}
	for len(s.ends) == 0 || s.ends[len(s.ends)-1] <= index {
		last := 1
		if len(s.ends) > 0 {
			last = s.ends[len(s.ends)-1]
		}
		s.ends = append(s.ends, last+50+s.r.IntN(151))
	}
	k := sort.Search(len(s.ends), func(k int) bool { return s.ends[k] > index })
	return fmt.Sprintf("%s-LOT-%06d", code, s.base+k)
}
