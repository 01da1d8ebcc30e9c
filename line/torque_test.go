package line

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/vin"
)

// controllerYAML is a valid one-station config with the default line's
// products and the given controllers section (indented for a station).
func controllerYAML(controllers string) string {
	y := stationYAML("")
	products := `products:
  wmi: 7KL
  model_year: 2027
  plant_code: U
  models:
    - {code: KV, body: "2", variants: [{name: 2WD, code: 2W}, {name: 4WD, code: 4W, options: [4WD]}]}
    - {code: KT, body: "3", variants: [{name: 4WD, code: 4W, options: [4WD]}]}
    - {code: KE, body: "4", options: [EV], variants: [{name: standard, code: SR}]}
  colours: [white]
`
	y = strings.Replace(y, "stations:\n", products+"stations:\n", 1)
	return y + "    controllers:\n" + controllers
}

func TestControllerConfig(t *testing.T) {
	cfg, err := Parse("line.yaml", []byte(controllerYAML(`      - id: W01-NR1
        address: 10.1.4.21:4545
        revision: {min: 2}
        keep_alive: 3s
        time_zone: Asia/Tokyo
        joints:
          - {name: "lug_{n}", count: 3, class: a}
          - {name: spare, class: C}
        psets: [{model: KT, pset: 2}, {option: EV, pset: 3}, {model: KV, variant: 4WD, pset: 0}]
        pset_default: 1
        batch_sizes: {2: 2}
`)))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := cfg.Station("W01")
	ct := &st.Controllers[0]
	if ct.Revision != (Revisions{Min: 2, Max: ControllerRevisionMax}) || ct.ResultRevision != (Revisions{Min: 1, Max: ControllerResultRevisionMax}) || ct.KeepAlive != 3*time.Second {
		t.Errorf("revision %+v, result revision %+v, keep-alive %s", ct.Revision, ct.ResultRevision, ct.KeepAlive)
	}
	if ct.Location().String() != "Asia/Tokyo" {
		t.Errorf("location %s", ct.Location())
	}
	want := []ControllerJoint{{"lug_1", "A"}, {"lug_2", "A"}, {"lug_3", "A"}, {"spare", "C"}}
	if got := ct.JointList(); len(got) != len(want) || got[0] != want[0] || got[2] != want[2] || got[3] != want[3] {
		t.Errorf("joints %+v, want %+v", got, want)
	}
	mk := func(model, variant string) Build {
		v, err := cfg.Products.VIN(model, variant, 7)
		if err != nil {
			t.Fatal(err)
		}
		b, err := cfg.Products.BuildOf(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range []struct {
		build     Build
		pset      int
		ok        bool
		batch     int
		lastJoint string
	}{
		{mk("KT", "4WD"), 2, true, 2, "lug_2"}, // first rule wins; a batch of 2
		{mk("KE", "standard"), 3, true, 4, "spare"},
		{mk("KV", "4WD"), 0, false, 0, ""}, // no tightening for this build
		{mk("KV", "2WD"), 1, true, 4, "spare"},
	} {
		pset, ok := ct.PsetFor(tt.build)
		if pset != tt.pset || ok != tt.ok {
			t.Errorf("%s: pset %d %v, want %d %v", tt.build, pset, ok, tt.pset, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if n := ct.BatchSize(pset); n != tt.batch {
			t.Errorf("%s: batch %d, want %d", tt.build, n, tt.batch)
		}
		if j, ok := ct.JointAt(pset, tt.batch); !ok || j.Name != tt.lastJoint {
			t.Errorf("%s: joint at %d = %+v %v, want %s", tt.build, tt.batch, j, ok, tt.lastJoint)
		}
		if _, ok := ct.JointAt(pset, tt.batch+1); ok {
			t.Errorf("%s: a joint beyond the batch", tt.build)
		}
	}
	if _, ok := ct.JointAt(1, 0); ok {
		t.Error("a joint at position 0")
	}
	if err := cfg.SetControllerAddresses(map[string]string{}); err == nil || !strings.Contains(err.Error(), "station W01: controller W01-NR1 has no address") {
		t.Errorf("SetControllerAddresses without the address = %v", err)
	}
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("again.yaml", b)
	if err != nil {
		t.Fatalf("the marshalled config does not parse: %v\n%s", err, b)
	}
	if st, _ := again.Station("W01"); len(st.Controllers[0].JointList()) != 4 || st.Controllers[0].BatchSize(2) != 2 {
		t.Errorf("round trip lost the controller: %+v", st.Controllers)
	}
}

func TestControllerConfigProblems(t *testing.T) {
	good := `      - id: W01-NR1
        address: 10.1.4.21:4545
        joints: [{name: "lug_{n}", count: 4, class: A}]
        pset_default: 1
`
	tests := []struct {
		name, from, to string
		want           []string
	}{
		{name: "address without a port", from: "10.1.4.21:4545", to: "10.1.4.21",
			want: []string{`line.yaml:L+2: station W01: controllers.0.address: "10.1.4.21" must be host:port`}},
		{name: "port out of range", from: "10.1.4.21:4545", to: "10.1.4.21:70000",
			want: []string{`line.yaml:L+2: station W01: controllers.0.address: port "70000" outside 1..65535`}},
		{name: "id with a dot", from: "id: W01-NR1", to: "id: W01.NR1",
			want: []string{`line.yaml:L+1: station W01: controllers.0.id: "W01.NR1" must be a non-empty word`}},
		{name: "class unknown", from: "class: A", to: "class: D",
			want: []string{`line.yaml:L+3: station W01: controllers.0.joints.0.class: "D" is not a VDI/VDE 2862 class; allowed: A, B, C`}},
		{name: "a run without {n}", from: `"lug_{n}"`, to: "lug",
			want: []string{`station W01: controllers.0.joints.0.name: "lug": a run of 4 joints needs {n}`}},
		{name: "a pattern without a count", from: "count: 4, ", to: "",
			want: []string{`controllers.0.joints.0.count: the name "lug_{n}" is a pattern`}},
		{name: "no joints", from: `joints: [{name: "lug_{n}", count: 4, class: A}]`, to: "joints: []",
			want: []string{"controllers.0.joints: none"}},
		{name: "no pset", from: "pset_default: 1", to: "keep_alive: 1s",
			want: []string{"controllers.0.psets: no parameter set"}},
		{name: "keep-alive too long", from: "pset_default: 1", to: "pset_default: 1\n        keep_alive: 20s",
			want: []string{"line.yaml:L+5: station W01: controllers.0.keep_alive: 20s outside 10ms..14s"}},
		{name: "revision out of range", from: "pset_default: 1", to: "pset_default: 1\n        revision: {max: 9}",
			want: []string{"line.yaml:L+5: station W01: controllers.0.revision.max: 9 outside 1..6"}},
		{name: "revision bounds crossed", from: "pset_default: 1", to: "pset_default: 1\n        result_revision: {min: 5, max: 3}",
			want: []string{"controllers.0.result_revision: min 5 above max 3"}},
		{name: "unknown model", from: "pset_default: 1", to: "psets: [{model: KX, pset: 2}]",
			want: []string{`line.yaml:L+4: station W01: controllers.0.psets.0.model: "KX" is not one of the products' models`}},
		{name: "unknown variant", from: "pset_default: 1", to: "psets: [{model: KT, variant: 2WD, pset: 2}]",
			want: []string{`controllers.0.psets.0.variant: model KT has no variant "2WD"`}},
		{name: "unknown option", from: "pset_default: 1", to: "psets: [{option: HOVER, pset: 2}]",
			want: []string{`controllers.0.psets.0.option: "HOVER" is not one of the products' options`}},
		{name: "pset out of range", from: "pset_default: 1", to: "psets: [{model: KT, pset: 1000}]",
			want: []string{"controllers.0.psets.0.pset: 1000 outside 0..999"}},
		{name: "batch of a pset not in the map", from: "pset_default: 1", to: "pset_default: 1\n        batch_sizes: {7: 2}",
			want: []string{"line.yaml:L+5: station W01: controllers.0.batch_sizes.7: parameter set 7 is not in the pset map"}},
		{name: "batch larger than the joints", from: "pset_default: 1", to: "pset_default: 1\n        batch_sizes: {1: 5}",
			want: []string{"controllers.0.batch_sizes.1: 5 outside 1..4"}},
		{name: "time zone unknown", from: "pset_default: 1", to: "pset_default: 1\n        time_zone: Mars/Olympus",
			want: []string{`controllers.0.time_zone: "Mars/Olympus" is not a time zone name`}},
		{name: "unknown field", from: "pset_default: 1", to: "pset_default: 1\n        port: 4545",
			want: []string{"line.yaml:L+5: station W01: controllers.0.port: unknown field; allowed: id, address, revision"}},
		{name: "a second controller with the same id and joints", from: "", to: "",
			want: []string{`controllers.1.id: "W01-NR1" is used twice on the line`, `controllers.1.joints: lug_1, lug_2, lug_3, lug_4 made by controller W01-NR1 too`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := strings.Replace(good, tt.from, tt.to, 1)
			if tt.from == "" {
				c = good + good
			}
			y := controllerYAML(c)
			base := strings.Count(y[:strings.Index(y, "    controllers:\n")], "\n") + 1
			_, err := Parse("line.yaml", []byte(y))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Parse = %v, want a *ConfigError", err)
			}
			for _, w := range tt.want {
				w = regexp.MustCompile(`L\+(\d)`).ReplaceAllStringFunc(w, func(k string) string {
					n, _ := strconv.Atoi(k[2:])
					return strconv.Itoa(base + n)
				})
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if len(ce.Problems) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%v", len(ce.Problems), len(tt.want), err)
			}
		})
	}
}

func TestBuildOf(t *testing.T) {
	p := Default().Products
	for _, tt := range []struct {
		model, variant string
		options        []string
	}{{"KV", "4WD", []string{"4WD"}}, {"KW", "Turbo", []string{"TURBO"}}, {"KE", "long range", []string{"EV"}}, {"KW", "NA", nil}} {
		v, err := p.VIN(tt.model, tt.variant, 4242)
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.BuildOf(v)
		if err != nil {
			t.Fatalf("BuildOf(%s) = %v", v, err)
		}
		if b.Model != tt.model || b.Variant != tt.variant || strings.Join(b.Options, ",") != strings.Join(tt.options, ",") {
			t.Errorf("BuildOf(%s) = %s, want %s %s %v", v, b, tt.model, tt.variant, tt.options)
		}
	}
	other := func(wmi, descriptor string) string {
		v, err := vin.Make(wmi, descriptor, 2027, 'U', 5)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for v, want := range map[string]string{
		"7KLKW1NA":            "invalid VIN", // too short
		other("1HG", "KW1NA"): "manufacturer 1HG is not the line's",
		other("7KL", "KX1NA"): "model code KX",
		other("7KL", "KW2NA"): "body 2 is not model KW's (1)",
		other("7KL", "KW1ZZ"): "model KW has no variant of code ZZ",
		other("7KL", "KW1NA")[:8] + "0" + other("7KL", "KW1NA")[9:]: "check digit",
	} {
		if _, err := p.BuildOf(v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("BuildOf(%q) = %v, want an error saying %q", v, err, want)
		}
	}
}

// TestDefaultLineControllers: the default line's wheel nuts and seat bolts
// are class A joints of controllers at C04 and F01; the truck's wheels get
// a parameter set of their own.
func TestDefaultLineControllers(t *testing.T) {
	c := Default()
	var names []string
	for _, sc := range c.Controllers() {
		for _, j := range sc.Controller.JointList() {
			if j.Class != ClassA {
				t.Errorf("%s %s: class %s", sc.Controller.ID, j.Name, j.Class)
			}
			names = append(names, sc.Station.ID+":"+j.Name)
		}
	}
	if len(names) != 24 || names[0] != "C04:lug_fl_1" || names[15] != "C04:lug_rr_4" || names[16] != "F01:seat_m10_1" || names[23] != "F01:seat_m10_8" {
		t.Errorf("controller joints %v", names)
	}
	c04, _ := c.Station("C04")
	kt, _ := c.Products.VIN("KT", "4WD", 1)
	b, _ := c.Products.BuildOf(kt)
	if p, _ := c04.Controllers[0].PsetFor(b); p != 2 {
		t.Errorf("C04-NR1 pset for a KT: %d, want 2", p)
	}
	c.RemoveControllers()
	if len(c.Controllers()) != 0 {
		t.Error("RemoveControllers left controllers")
	}
}

// TestClassAJoints: what a car must get at a station, by the pset its
// build selects and the pset's batch size.
func TestClassAJoints(t *testing.T) {
	c := Default()
	kw, _ := c.Products.VIN("KW", "NA", 7)
	if got := c.ClassAJoints("C04", kw, "KW", "NA"); len(got) != 16 || got[0] != "lug_fl_1" || got[15] != "lug_rr_4" {
		t.Errorf("C04 class A joints of a KW: %v, want the 16 wheel nuts", got)
	}
	if got := c.ClassAJoints("F01", kw, "KW", "NA"); len(got) != 8 || got[7] != "seat_m10_8" {
		t.Errorf("F01 class A joints: %v", got)
	}
	if got := c.ClassAJoints("F02", kw, "KW", "NA"); got != nil {
		t.Errorf("a station without controllers: %v", got)
	}
	st, _ := c.Station("C04")
	st.Controllers[0].BatchSizes = map[int]int{1: 2}
	st.Controllers[1].Joints[0].Class = ClassB
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.ClassAJoints("C04", kw, "KW", "NA"); len(got) != 10 || got[1] != "lug_fl_2" || got[2] != "lug_rl_1" {
		t.Errorf("with batch size 2 at NR1 and class B at NR2: %v", got)
	}
	// A VIN of no build of the line: the cycle's model and variant.
	if got := c.ClassAJoints("C04", "not a VIN", "KW", "NA"); len(got) != 10 {
		t.Errorf("from model and variant: %v", got)
	}
	st.Controllers[0].Psets = []PsetRule{{Model: "KW", Pset: 0}}
	if got := c.ClassAJoints("C04", kw, "KW", "NA"); len(got) != 8 {
		t.Errorf("a build NR1 makes no joint on: %v", got)
	}
}
