package line

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keiline/keiline/internal/vin"
)

// Tightening controllers (docs/torque.md): a station's nutrunners whose
// controllers the agent reaches over the Open Protocol, beside the
// station's PLC. Each controller makes some of the station's joints; its
// results are those joints, one tightening event each.

// Defaults and limits of a controller's config. The revision limits are
// those keiline's Open Protocol client speaks.
const (
	// ControllerRevisionMax is the highest MID 0001 revision (communication
	// start) keiline asks; it falls back to lower ones down to the minimum.
	ControllerRevisionMax = 6
	// ControllerResultRevisionMax is the highest MID 0060/0061 revision
	// (tightening results) keiline asks.
	ControllerResultRevisionMax = 7
	// KeepAliveDefault is how long the agent stays silent before it sends
	// a keep-alive (MID 9999); controllers drop a link silent for 15 s.
	KeepAliveDefault = 5 * time.Second
	// KeepAliveMin and KeepAliveMax bound keep_alive.
	KeepAliveMin = 10 * time.Millisecond
	KeepAliveMax = 14 * time.Second
	// JointsPerControllerMax is the most joints one controller may make.
	JointsPerControllerMax = 999
	// PsetMax is the highest parameter set number (MID 0018).
	PsetMax = 999
)

// Joint classes of VDI/VDE 2862: A, a joint whose failure endangers life
// (recorded 100 %, a car never leaves without it); B, one whose failure
// stops the car working; C, the rest.
const (
	ClassA = "A"
	ClassB = "B"
	ClassC = "C"
)

// JointClasses are the allowed values of a joint's class.
var JointClasses = []string{ClassA, ClassB, ClassC}

// Controller is one tightening controller of a station.
type Controller struct {
	// ID names the controller in events, alarms and metrics, e.g.
	// C04-NR1. Required, unique on the line; a word without dots or
	// spaces.
	ID string `yaml:"id"`
	// Address is the controller's host:port (the Open Protocol's usual
	// port is 4545). Required.
	Address string `yaml:"address"`
	// Revision bounds the MID 0001 revision: the agent asks Max first
	// and, when the controller refuses it (error 97), the next lower, down
	// to Min. Default 1..6.
	Revision Revisions `yaml:"revision,omitempty"`
	// ResultRevision bounds the MID 0060/0061 revision the same way.
	// Default 1..7.
	ResultRevision Revisions `yaml:"result_revision,omitempty"`
	// KeepAlive is the longest the agent stays silent on the link.
	// Defaults to 5 s; 10 ms..14 s.
	KeepAlive time.Duration `yaml:"keep_alive,omitempty"`
	// TimeZone is the controller's time zone (an IANA name such as
	// Asia/Tokyo): its timestamps carry none. Defaults to the agent's.
	TimeZone string `yaml:"time_zone,omitempty"`
	// Joints are the joints the controller makes on a car, in the order
	// its batch counts them. At least one.
	Joints []JointSpec `yaml:"joints"`
	// Psets choose the parameter set for a car's build: the first rule
	// that matches wins.
	Psets []PsetRule `yaml:"psets,omitempty"`
	// PsetDefault is the parameter set of a build no rule matches; 0 (the
	// default) means none: such a car gets no tightening here and the
	// tool stays disabled.
	PsetDefault int `yaml:"pset_default,omitempty"`
	// BatchSizes is the batch size of each parameter set: how many of the
	// joints, from the first, a car gets with it. Defaults to every joint.
	BatchSizes map[int]int `yaml:"batch_sizes,omitempty"`

	joints []ControllerJoint // Joints expanded
	loc    *time.Location
}

// Revisions bound a MID revision.
type Revisions struct {
	// Min is the lowest revision accepted. Defaults to 1.
	Min int `yaml:"min,omitempty"`
	// Max is the revision asked first. Defaults to the highest keiline
	// speaks.
	Max int `yaml:"max,omitempty"`
}

// JointSpec is one joint or, with Count, a run of joints of one class.
type JointSpec struct {
	// Name is the joint's name; with Count, a pattern whose {n} is the
	// joint's number (lug_fl_{n}).
	Name string `yaml:"name"`
	// Count makes Count joints from the pattern. Defaults to one joint.
	Count int `yaml:"count,omitempty"`
	// First is the number of the first joint of a run. Defaults to 1.
	First int `yaml:"first,omitempty"`
	// Class is the VDI/VDE 2862 class: A, B or C. Required.
	Class string `yaml:"class"`
}

// PsetRule maps the builds it matches to a parameter set. Each condition
// given must hold; a rule without conditions matches every build.
type PsetRule struct {
	// Model is a model code (KT).
	Model string `yaml:"model,omitempty"`
	// Variant is a variant name of the model (4WD).
	Variant string `yaml:"variant,omitempty"`
	// Option is an option code the build has (EV).
	Option string `yaml:"option,omitempty"`
	// Pset is the parameter set, 1..999, or 0: no tightening for such a
	// build (the tool stays disabled).
	Pset int `yaml:"pset"`
}

// ControllerJoint is one joint a controller makes.
type ControllerJoint struct {
	Name  string
	Class string
}

// Build is what a car is: its model, variant and options.
type Build struct {
	Model, Variant string
	Options        []string
}

func (b Build) String() string {
	s := b.Model + " " + b.Variant
	if len(b.Options) > 0 {
		s += " (" + strings.Join(b.Options, ", ") + ")"
	}
	return s
}

// JointList returns the controller's joints in batch order.
func (ct *Controller) JointList() []ControllerJoint { return ct.joints }

// Location is the controller's time zone (time.Local when none is set).
func (ct *Controller) Location() *time.Location {
	if ct.loc == nil {
		return time.Local
	}
	return ct.loc
}

// PsetFor returns the parameter set for build b: that of the first rule
// matching it, else PsetDefault. ok is false when the car gets no
// tightening from this controller (pset 0).
func (ct *Controller) PsetFor(b Build) (pset int, ok bool) {
	pset = ct.PsetDefault
	for _, r := range ct.Psets {
		if r.matches(b) {
			pset = r.Pset
			break
		}
	}
	return pset, pset > 0
}

func (r PsetRule) matches(b Build) bool {
	return (r.Model == "" || r.Model == b.Model) && (r.Variant == "" || r.Variant == b.Variant) &&
		(r.Option == "" || slices.Contains(b.Options, r.Option))
}

// BatchSize returns how many joints a car gets with pset: its batch size,
// by default every joint.
func (ct *Controller) BatchSize(pset int) int {
	if n, ok := ct.BatchSizes[pset]; ok {
		return n
	}
	return len(ct.joints)
}

// JointAt returns the joint at batch position pos (1 is the first joint
// of the batch) of parameter set pset, or false when the batch has no
// such position.
func (ct *Controller) JointAt(pset, pos int) (ControllerJoint, bool) {
	if pos < 1 || pos > ct.BatchSize(pset) || pos > len(ct.joints) {
		return ControllerJoint{}, false
	}
	return ct.joints[pos-1], true
}

// BuildOf reads a car's build from its VIN: the vehicle descriptor
// (49 CFR 565 positions 4-8) is the model code, the model's body
// character and the variant code, as the products define them; the
// options are those the model and variant imply (an option an order adds,
// such as a sunroof, is not in the VIN). It returns an error when the VIN
// is not one of the line's cars.
func (p *Products) BuildOf(v string) (Build, error) {
	if err := vin.Validate(v); err != nil {
		return Build{}, err
	}
	if v[:3] != p.WMI {
		return Build{}, fmt.Errorf("VIN %s: manufacturer %s is not the line's (%s)", v, v[:3], p.WMI)
	}
	m, ok := p.Model(v[3:5])
	if !ok {
		return Build{}, fmt.Errorf("VIN %s: model code %s is not one of the line's", v, v[3:5])
	}
	if m.Body != v[5:6] {
		return Build{}, fmt.Errorf("VIN %s: body %s is not model %s's (%s)", v, v[5:6], m.Code, m.Body)
	}
	for _, va := range m.Variants {
		if va.Code == v[6:8] {
			return Build{Model: m.Code, Variant: va.Name, Options: p.ImpliedOptions(m.Code, va.Name)}, nil
		}
	}
	return Build{}, fmt.Errorf("VIN %s: model %s has no variant of code %s", v, m.Code, v[6:8])
}

// Controllers returns every controller of the line with its station.
func (c *Config) Controllers() []StationController {
	var out []StationController
	for i := range c.Stations {
		for j := range c.Stations[i].Controllers {
			out = append(out, StationController{Station: &c.Stations[i], Controller: &c.Stations[i].Controllers[j]})
		}
	}
	return out
}

// StationController is a controller and the station it belongs to.
type StationController struct {
	Station    *Station
	Controller *Controller
}

// SetControllerAddresses sets each controller's address from addrs (by
// controller id) and reports a controller without one.
func (c *Config) SetControllerAddresses(addrs map[string]string) error {
	for _, sc := range c.Controllers() {
		a, ok := addrs[sc.Controller.ID]
		if !ok {
			return fmt.Errorf("line %s: station %s: controller %s has no address", c.Line, sc.Station.ID, sc.Controller.ID)
		}
		sc.Controller.Address = a
	}
	return nil
}

// RemoveControllers drops every station's controllers, for a plant whose
// stations make their joints without them (the PLC reports the joints).
func (c *Config) RemoveControllers() {
	for i := range c.Stations {
		c.Stations[i].Controllers = nil
	}
}

// validateControllers checks and expands a station's controllers. ids are
// the controller ids seen on the line so far, joints the station's joint
// names.
func (c *Config) validateControllers(st *Station, at func(string) string, add func(string, string, ...any), ids map[string]bool) {
	joints := map[string]string{} // joint name → controller
	for j := range st.Controllers {
		ct := &st.Controllers[j]
		cat := func(f string) string { return at(fmt.Sprintf("controllers.%d.%s", j, f)) }
		if !token(ct.ID) {
			add(cat("id"), "%q must be a non-empty word without dots or spaces", ct.ID)
		} else if ids[ct.ID] {
			add(cat("id"), "%q is used twice on the line", ct.ID)
		}
		ids[ct.ID] = true
		if host, port, err := net.SplitHostPort(ct.Address); err != nil || host == "" {
			add(cat("address"), "%q must be host:port (the Open Protocol's usual port is 4545)", ct.Address)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			add(cat("address"), "port %q outside 1..65535", port)
		}
		validateRevisions(&ct.Revision, ControllerRevisionMax, cat("revision"), add)
		validateRevisions(&ct.ResultRevision, ControllerResultRevisionMax, cat("result_revision"), add)
		switch {
		case ct.KeepAlive == 0:
			ct.KeepAlive = KeepAliveDefault
		case ct.KeepAlive < KeepAliveMin || ct.KeepAlive > KeepAliveMax:
			add(cat("keep_alive"), "%s outside %s..%s (controllers drop a link silent for 15s)", ct.KeepAlive, KeepAliveMin, KeepAliveMax)
		}
		ct.loc = nil
		if ct.TimeZone != "" {
			loc, err := time.LoadLocation(ct.TimeZone)
			if err != nil || ct.TimeZone == "Local" {
				add(cat("time_zone"), "%q is not a time zone name (an IANA name such as Asia/Tokyo, or UTC)", ct.TimeZone)
			} else {
				ct.loc = loc
			}
		}
		ct.joints = expandJoints(ct, cat, add)
		var dups []string
		other := ""
		for _, jt := range ct.joints {
			if o, dup := joints[jt.Name]; dup {
				dups, other = append(dups, jt.Name), o
			}
			joints[jt.Name] = ct.ID
		}
		if len(dups) > 0 {
			add(cat("joints"), "%s made by controller %s too: a joint's name is unique at the station", strings.Join(dups, ", "), other)
		}
		c.validatePsets(ct, cat, add)
	}
}

func validateRevisions(r *Revisions, highest int, at string, add func(string, string, ...any)) {
	if r.Min == 0 {
		r.Min = 1
	}
	if r.Max == 0 {
		r.Max = highest
	}
	if r.Min < 1 || r.Min > highest {
		add(at+".min", "%d outside 1..%d", r.Min, highest)
	}
	if r.Max < 1 || r.Max > highest {
		add(at+".max", "%d outside 1..%d", r.Max, highest)
	}
	if r.Min > r.Max {
		add(at, "min %d above max %d", r.Min, r.Max)
	}
}

// expandJoints checks a controller's joints and returns them one by one.
func expandJoints(ct *Controller, cat func(string) string, add func(string, string, ...any)) []ControllerJoint {
	var out []ControllerJoint
	if len(ct.Joints) == 0 {
		add(cat("joints"), "none: name the joints the controller makes (a name, or a pattern with {n} and a count), each with its class A, B or C")
	}
	seen := map[string]bool{}
	for k, js := range ct.Joints {
		jat := func(f string) string { return cat(fmt.Sprintf("joints.%d.%s", k, f)) }
		class, ok := canonical(JointClasses, js.Class)
		if !ok {
			add(jat("class"), "%q is not a VDI/VDE 2862 class; allowed: %s", js.Class, strings.Join(JointClasses, ", "))
		}
		n := 1
		switch {
		case js.Count < 0 || js.Count > JointsPerControllerMax:
			add(jat("count"), "%d outside 1..%d", js.Count, JointsPerControllerMax)
			continue
		case js.Count > 0:
			n = js.Count
			if !strings.Contains(js.Name, "{n}") && js.Count > 1 {
				add(jat("name"), "%q: a run of %d joints needs {n} in its name (lug_fl_{n})", js.Name, js.Count)
				continue
			}
		case strings.Contains(js.Name, "{n}"):
			add(jat("count"), "the name %q is a pattern: give the count of joints it makes", js.Name)
			continue
		}
		first := js.First
		if first == 0 {
			first = 1
		}
		if first < 0 {
			add(jat("first"), "%d is negative", first)
			continue
		}
		for i := range n {
			name := strings.ReplaceAll(js.Name, "{n}", strconv.Itoa(first+i))
			if strings.TrimSpace(name) == "" || strings.ContainsAny(name, "\t\r\n") {
				add(jat("name"), "%q must be a non-empty name on one line", name)
				break
			}
			if seen[name] {
				add(jat("name"), "joint %q appears twice", name)
				continue
			}
			seen[name] = true
			out = append(out, ControllerJoint{Name: name, Class: class})
		}
	}
	if len(out) > JointsPerControllerMax {
		add(cat("joints"), "%d joints; at most %d", len(out), JointsPerControllerMax)
	}
	return out
}

// validatePsets checks a controller's pset map and batch sizes against
// the products.
func (c *Config) validatePsets(ct *Controller, cat func(string) string, add func(string, string, ...any)) {
	p := c.Products
	for k, r := range ct.Psets {
		rat := func(f string) string { return cat(fmt.Sprintf("psets.%d.%s", k, f)) }
		if r.Pset < 0 || r.Pset > PsetMax {
			add(rat("pset"), "%d outside 0..%d (0: no tightening for such a build)", r.Pset, PsetMax)
		}
		if (r.Model != "" || r.Variant != "" || r.Option != "") && p == nil {
			add(cat(fmt.Sprintf("psets.%d", k)), "a rule on the build needs the line's products section (the build is read from the VIN)")
			continue
		}
		if r.Model != "" {
			if m, ok := p.Model(r.Model); !ok {
				add(rat("model"), "%q is not one of the products' models", r.Model)
			} else if r.Variant != "" {
				if _, ok := m.Variant(r.Variant); !ok {
					add(rat("variant"), "model %s has no variant %q", r.Model, r.Variant)
				}
			}
		} else if r.Variant != "" && p != nil && !slices.ContainsFunc(p.Models, func(m Model) bool { _, ok := m.Variant(r.Variant); return ok }) {
			add(rat("variant"), "%q is no model's variant", r.Variant)
		}
		if r.Option != "" && p != nil && !slices.Contains(p.AllOptions(), r.Option) {
			add(rat("option"), "%q is not one of the products' options", r.Option)
		}
	}
	if ct.PsetDefault < 0 || ct.PsetDefault > PsetMax {
		add(cat("pset_default"), "%d outside 0..%d (0: a build no rule matches gets no tightening)", ct.PsetDefault, PsetMax)
	}
	if len(ct.Psets) == 0 && ct.PsetDefault == 0 {
		add(cat("psets"), "no parameter set: give rules (model, variant, option → pset) or a pset_default")
	}
	used := map[int]bool{ct.PsetDefault: ct.PsetDefault > 0}
	for _, r := range ct.Psets {
		used[r.Pset] = r.Pset > 0
	}
	keys := make([]int, 0, len(ct.BatchSizes))
	for k := range ct.BatchSizes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, ps := range keys {
		n := ct.BatchSizes[ps]
		switch {
		case !used[ps]:
			add(cat(fmt.Sprintf("batch_sizes.%d", ps)), "parameter set %d is not in the pset map", ps)
		case n < 1 || n > len(ct.joints):
			add(cat(fmt.Sprintf("batch_sizes.%d", ps)), "%d outside 1..%d (the controller's joints: a car gets the first n)", n, len(ct.joints))
		}
	}
}

// ClassAJoints returns the class A joints (VDI/VDE 2862) a car of vin gets
// at station from the station's controllers, in config order: for each
// controller the joints of the parameter set the car's build selects, up
// to its batch size. The build comes from the VIN (Products.BuildOf), as
// the agent selects the parameter set; a VIN that is not one of the
// line's cars (or a line without products) has the build of model and
// variant with the options they imply. None when the station has no
// controller.
func (c *Config) ClassAJoints(station, vin, model, variant string) []string {
	st, ok := c.Station(station)
	if !ok || len(st.Controllers) == 0 {
		return nil
	}
	b := Build{Model: model, Variant: variant}
	if p := c.Products; p != nil {
		var err error
		if b, err = p.BuildOf(vin); err != nil {
			b = Build{Model: model, Variant: variant, Options: p.ImpliedOptions(model, variant)}
		}
	}
	var out []string
	for i := range st.Controllers {
		ct := &st.Controllers[i]
		pset, ok := ct.PsetFor(b)
		if !ok {
			continue
		}
		for pos := 1; ; pos++ {
			j, ok := ct.JointAt(pset, pos)
			if !ok {
				break
			}
			if j.Class == ClassA {
				out = append(out, j.Name)
			}
		}
	}
	return out
}
