package line

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/keiline/keiline/spc"
)

// SPC is the line's statistical process control settings (the spc:
// section, issue 17): the run rules charts are checked with and, per
// characteristic, its spec limits, chart, subgroup size, rules and what a
// rule break does. A characteristic the section does not name is still
// charted (individuals, the line's rules, the record's limits).
type SPC struct {
	// Rules are the run rules of every characteristic that names none:
	// "nelson" (Nelson 1–8), "we" (Western Electric 1–4) or rule ids
	// (nelson1 … nelson8, we1 … we4). Defaults to nelson.
	Rules []string `yaml:"rules,omitempty"`
	// Characteristics are the characteristics with settings of their own.
	Characteristics []SPCCharacteristic `yaml:"characteristics,omitempty"`
}

// Kinds of a characteristic (the record's schema.Kind*).
var SPCKinds = []string{"torque", "angle", "test"}

// What a rule break does (SPCCharacteristic.OnBreak).
const (
	// OnBreakAlarm shows an alarm on the dashboard. The default.
	OnBreakAlarm = "alarm"
	// OnBreakAndon raises an andon at the characteristic's station too.
	OnBreakAndon = "andon"
	// OnBreakHold also holds the cars made since the last good point.
	OnBreakHold = "hold"
)

// OnBreaks are the allowed values of on_break.
var OnBreaks = []string{OnBreakAlarm, OnBreakAndon, OnBreakHold}

// Capability targets (AIAG; IATF 16949 customer requirements).
const (
	// CpkMinDefault is the capability a production characteristic must
	// show.
	CpkMinDefault = 1.33
	// CpkMinClassA is the capability of a class A (safety) characteristic.
	CpkMinClassA = 1.67
)

// SPCCharacteristic is one characteristic's settings.
type SPCCharacteristic struct {
	// Kind is torque or angle (of a joint) or test. Required.
	Kind string `yaml:"kind"`
	// Station is the station id. Required; a station of the line.
	Station string `yaml:"station"`
	// Name is the joint or test name. Required.
	Name string `yaml:"name"`
	// Model and Variant, when set, make the characteristic one model's (or
	// one variant's) values only.
	Model   string `yaml:"model,omitempty"`
	Variant string `yaml:"variant,omitempty"`
	// LSL, USL and Target are the spec. For a test, limits left out are
	// the record's (the PLC's low and high).
	LSL    *float64 `yaml:"lsl,omitempty"`
	USL    *float64 `yaml:"usl,omitempty"`
	Target *float64 `yaml:"target,omitempty"`
	// Chart is i-mr, xbar-r or xbar-s. Defaults to i-mr for a subgroup of
	// 1 and xbar-r for larger subgroups.
	Chart string `yaml:"chart,omitempty"`
	// Subgroup is the number of consecutive results per plotted point, 1
	// to 25. Defaults to 1.
	Subgroup int `yaml:"subgroup,omitempty"`
	// Rules override the line's rules (same values).
	Rules []string `yaml:"rules,omitempty"`
	// Class A characteristics must reach Cpk CpkMinClassA (1.67), others
	// CpkMinDefault (1.33).
	ClassA bool `yaml:"class_a,omitempty"`
	// OnBreak is what a rule break does: alarm, andon or hold. Defaults
	// to alarm.
	OnBreak string `yaml:"on_break,omitempty"`
}

// ParseRules reads a rule list: "nelson", "we" or rule ids. Errors name
// the bad entry and the allowed values.
func ParseRules(names []string) ([]spc.Rule, error) {
	var out []spc.Rule
	for _, n := range names {
		switch strings.ToLower(strings.TrimSpace(n)) {
		case "nelson":
			out = append(out, spc.NelsonRules...)
		case "we", "western-electric":
			out = append(out, spc.WesternElectricRules...)
		default:
			r := spc.Rule(strings.ToLower(strings.TrimSpace(n)))
			if err := spc.ValidateRules([]spc.Rule{r}); err != nil {
				return nil, fmt.Errorf("rule %q: want nelson, we or a rule id (nelson1 … nelson8, we1 … we4)", n)
			}
			out = append(out, r)
		}
	}
	return slices.Compact(out), nil
}

// ChartConfig is the chart the characteristic is drawn as.
func (c SPCCharacteristic) ChartConfig() spc.ChartConfig {
	n := max(c.Subgroup, 1)
	m := spc.Method(c.Chart)
	if m == "" {
		m = spc.MethodIMR
		if n > 1 {
			m = spc.MethodXbarR
		}
	}
	return spc.ChartConfig{Method: m, N: n}
}

// CpkMin is the capability the characteristic must show.
func (c SPCCharacteristic) CpkMin() float64 {
	if c.ClassA {
		return CpkMinClassA
	}
	return CpkMinDefault
}

// SPCFor returns the settings of a characteristic (see SPC.For).
func (c *Config) SPCFor(kind, station, name, model, variant string) SPCCharacteristic {
	return c.SPC.For(kind, station, name, model, variant)
}

// For returns the settings of the characteristic of kind, station, name,
// model and variant: its own entry, else its model's, else every car's,
// else the line's defaults. The rules are always filled in. A nil SPC
// gives the defaults.
func (s *SPC) For(kind, station, name, model, variant string) SPCCharacteristic {
	if s == nil {
		s = &SPC{}
	}
	var best *SPCCharacteristic
	bestScore := 0
	for i := range s.Characteristics {
		e := &s.Characteristics[i]
		if e.Kind != kind || e.Station != station || e.Name != name {
			continue
		}
		score := 0 // how closely the entry fits: its own, its model's, every car's
		switch {
		case e.Model == model && e.Variant == variant:
			score = 3
		case e.Model == model && e.Variant == "":
			score = 2
		case e.Model == "":
			score = 1
		}
		if score > bestScore {
			best, bestScore = e, score
		}
	}
	out := SPCCharacteristic{Kind: kind, Station: station, Name: name, Model: model, Variant: variant, OnBreak: OnBreakAlarm}
	if best != nil {
		out = *best
		out.Model, out.Variant = model, variant
	}
	if len(out.Rules) == 0 {
		out.Rules = s.Rules
	}
	if len(out.Rules) == 0 {
		out.Rules = []string{"nelson"}
	}
	if out.OnBreak == "" {
		out.OnBreak = OnBreakAlarm
	}
	return out
}

// RuleSet is the characteristic's rules as spc rules (see ParseRules).
// Validate has checked them; an unknown name is left out.
func (c SPCCharacteristic) RuleSet() []spc.Rule {
	rs, err := ParseRules(c.Rules)
	if err != nil {
		return spc.NelsonRules
	}
	return rs
}

// validateSPC adds the problems of the spc section.
func (c *Config) validateSPC(add func(path, format string, a ...any)) {
	if _, err := ParseRules(c.SPC.Rules); err != nil {
		add("spc.rules", "%v", err)
	}
	type key struct{ kind, station, name, model, variant string }
	seen := map[key]bool{}
	for i := range c.SPC.Characteristics {
		e := &c.SPC.Characteristics[i]
		at := func(f string) string { return fmt.Sprintf("spc.characteristics.%d.%s", i, f) }
		if !slices.Contains(SPCKinds, e.Kind) {
			add(at("kind"), "%q is not allowed; allowed: %s", e.Kind, strings.Join(SPCKinds, ", "))
		}
		if _, ok := c.Station(e.Station); !ok {
			add(at("station"), "%q is not a station of the line", e.Station)
		}
		if strings.TrimSpace(e.Name) == "" {
			add(at("name"), "required: the joint or test name")
		}
		if e.Variant != "" && e.Model == "" {
			add(at("variant"), "a variant needs its model")
		}
		if c.Products != nil && e.Model != "" {
			if m, ok := c.Products.Model(e.Model); !ok {
				add(at("model"), "%q is not a model of the products section", e.Model)
			} else if _, ok := m.Variant(e.Variant); e.Variant != "" && !ok {
				add(at("variant"), "%q is not a variant of model %s", e.Variant, e.Model)
			}
		}
		k := key{e.Kind, e.Station, e.Name, e.Model, e.Variant}
		if seen[k] {
			add(at("name"), "%s %s %s is configured twice", e.Kind, e.Station, e.Name)
		}
		seen[k] = true
		for _, f := range []struct {
			name string
			v    *float64
		}{{"lsl", e.LSL}, {"usl", e.USL}, {"target", e.Target}} {
			if f.v != nil && (math.IsNaN(*f.v) || math.IsInf(*f.v, 0)) {
				add(at(f.name), "must be a number")
			}
		}
		if e.LSL != nil && e.USL != nil && !(*e.LSL < *e.USL) {
			add(at("usl"), "%v must be above lsl %v", *e.USL, *e.LSL)
		}
		if e.Subgroup < 0 || e.Subgroup > spc.SubgroupMax {
			add(at("subgroup"), "%d outside %d..%d", e.Subgroup, spc.SubgroupMin, spc.SubgroupMax)
		} else if e.Chart != "" && !slices.Contains([]spc.Method{spc.MethodIMR, spc.MethodXbarR, spc.MethodXbarS}, spc.Method(e.Chart)) {
			add(at("chart"), "%q is not allowed; allowed: i-mr, xbar-r, xbar-s", e.Chart)
		} else if err := e.ChartConfig().Validate(); err != nil {
			add(at("chart"), "%s with subgroup %d: i-mr charts subgroups of 1, xbar-r and xbar-s subgroups of 2 to %d", e.ChartConfig().Method, max(e.Subgroup, 1), spc.SubgroupMax)
		}
		if _, err := ParseRules(e.Rules); err != nil {
			add(at("rules"), "%v", err)
		}
		if e.OnBreak != "" && !slices.Contains(OnBreaks, e.OnBreak) {
			add(at("on_break"), "%q is not allowed; allowed: %s", e.OnBreak, strings.Join(OnBreaks, ", "))
		}
	}
}
