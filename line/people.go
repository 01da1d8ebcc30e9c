package line

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keiline/keiline/pipeline/event"
)

// People is what the station terminals offer people (the people: section,
// issue 13): the line's defect catalogue with the location zones on the
// car, the reason tree a stop the PLC gave no reason for is classified
// from, and the meaning of an inspector's release signature.
type People struct {
	// Defects is the defect catalogue an operator records a defect from.
	Defects []Defect `yaml:"defects,omitempty"`
	// Zones are the location zones on the car a defect is found in
	// (hood, door_fl, …). Required when there are defects.
	Zones []Zone `yaml:"zones,omitempty"`
	// Reasons is the reason tree of stops: each reason may have children;
	// a stop is classified with a leaf.
	Reasons []Reason `yaml:"reasons,omitempty"`
	// ReleaseMeaning is what an inspector's release signature means,
	// shown before signing and recorded with it. Defaults to
	// ReleaseMeaningDefault.
	ReleaseMeaning string `yaml:"release_meaning,omitempty"`
}

// ReleaseMeaningDefault is the meaning of a release signature unless the
// line config says otherwise.
const ReleaseMeaningDefault = "I inspected this car after its holds and release it as conforming"

// ReasonDepthMax is how deep the reason tree may be.
const ReasonDepthMax = 4

// Defect is one entry of the defect catalogue.
type Defect struct {
	// Code is the defect's code (SCR-01). Required, unique.
	Code string `yaml:"code"`
	// Name and NameJA are what the terminal shows, in English and
	// Japanese. Name is required; NameJA defaults to Name.
	Name   string `yaml:"name"`
	NameJA string `yaml:"name_ja,omitempty"`
	// Severity is the severity the form suggests: minor, major or
	// critical. Defaults to minor.
	Severity string `yaml:"severity,omitempty"`
}

// Zone is a location zone on the car.
type Zone struct {
	Code   string `yaml:"code"`
	Name   string `yaml:"name"`
	NameJA string `yaml:"name_ja,omitempty"`
}

// Reason is a node of the reason tree.
type Reason struct {
	Code    string   `yaml:"code"`
	Name    string   `yaml:"name"`
	NameJA  string   `yaml:"name_ja,omitempty"`
	Reasons []Reason `yaml:"reasons,omitempty"`
}

// Label is the name to show in lang ("en" or "ja").
func label(name, ja, lang string) string {
	if lang == "ja" && ja != "" {
		return ja
	}
	return name
}

// Label is the defect's name in lang.
func (d Defect) Label(lang string) string { return label(d.Name, d.NameJA, lang) }

// Label is the zone's name in lang.
func (z Zone) Label(lang string) string { return label(z.Name, z.NameJA, lang) }

// Label is the reason's name in lang.
func (r Reason) Label(lang string) string { return label(r.Name, r.NameJA, lang) }

// Defect returns the catalogue's defect of code.
func (p *People) Defect(code string) (Defect, bool) {
	i := slices.IndexFunc(p.Defects, func(d Defect) bool { return d.Code == code })
	if i < 0 {
		return Defect{}, false
	}
	return p.Defects[i], true
}

// Zone returns the zone of code.
func (p *People) Zone(code string) (Zone, bool) {
	i := slices.IndexFunc(p.Zones, func(z Zone) bool { return z.Code == code })
	if i < 0 {
		return Zone{}, false
	}
	return p.Zones[i], true
}

// LeafReason is a leaf of the reason tree with its path of names.
type LeafReason struct {
	Code string
	// Path is the names from the root to the leaf.
	Path []Reason
}

// Label is the leaf's path in lang: "Material › Part missing".
func (l LeafReason) Label(lang string) string {
	names := make([]string, len(l.Path))
	for i, r := range l.Path {
		names[i] = r.Label(lang)
	}
	return strings.Join(names, " › ")
}

// Leaves returns the reason tree's leaves, depth first: what a stop may be
// classified with.
func (p *People) Leaves() []LeafReason {
	var out []LeafReason
	var walk func(rs []Reason, path []Reason)
	walk = func(rs []Reason, path []Reason) {
		for _, r := range rs {
			at := append(slices.Clone(path), r)
			if len(r.Reasons) == 0 {
				out = append(out, LeafReason{Code: r.Code, Path: at})
				continue
			}
			walk(r.Reasons, at)
		}
	}
	walk(p.Reasons, nil)
	return out
}

// Leaf returns the leaf of the reason tree with code.
func (p *People) Leaf(code string) (LeafReason, bool) {
	for _, l := range p.Leaves() {
		if l.Code == code {
			return l, true
		}
	}
	return LeafReason{}, false
}

// Meaning is the release signature's meaning.
func (p *People) Meaning() string {
	if p.ReleaseMeaning == "" {
		return ReleaseMeaningDefault
	}
	return p.ReleaseMeaning
}

// validatePeople checks the people: section.
func (c *Config) validatePeople(add func(path, format string, a ...any)) {
	p := &c.People
	codes := map[string]bool{}
	for i := range p.Defects {
		d := &p.Defects[i]
		at := func(f string) string { return fmt.Sprintf("people.defects.%d.%s", i, f) }
		switch {
		case !token(d.Code):
			add(at("code"), "%q must be a non-empty word without dots or spaces", d.Code)
		case codes[d.Code]:
			add(at("code"), "%q is used twice", d.Code)
		}
		codes[d.Code] = true
		if strings.TrimSpace(d.Name) == "" {
			add(at("name"), "missing: the name the terminal shows")
		}
		if d.Severity == "" {
			d.Severity = event.Severities[0]
		} else if !slices.Contains(event.Severities, d.Severity) {
			add(at("severity"), "%q is not allowed; allowed: %s", d.Severity, strings.Join(event.Severities, ", "))
		}
	}
	if len(p.Defects) > 0 && len(p.Zones) == 0 {
		add("people.zones", "none configured: a defect needs the zone on the car it is in")
	}
	zones := map[string]bool{}
	for i, z := range p.Zones {
		at := func(f string) string { return fmt.Sprintf("people.zones.%d.%s", i, f) }
		switch {
		case !token(z.Code):
			add(at("code"), "%q must be a non-empty word without dots or spaces", z.Code)
		case zones[z.Code]:
			add(at("code"), "%q is used twice", z.Code)
		}
		zones[z.Code] = true
		if strings.TrimSpace(z.Name) == "" {
			add(at("name"), "missing: the name the terminal shows")
		}
	}
	reasons := map[string]bool{}
	var walk func(rs []Reason, path string, depth int)
	walk = func(rs []Reason, path string, depth int) {
		for i, r := range rs {
			at := func(f string) string { return fmt.Sprintf("%s.%d.%s", path, i, f) }
			switch {
			case !token(r.Code):
				add(at("code"), "%q must be a non-empty word without dots or spaces", r.Code)
			case reasons[r.Code]:
				add(at("code"), "%q is used twice in the reason tree", r.Code)
			}
			reasons[r.Code] = true
			if strings.TrimSpace(r.Name) == "" {
				add(at("name"), "missing: the name the terminal shows")
			}
			if len(r.Reasons) > 0 {
				if depth >= ReasonDepthMax {
					add(at("reasons"), "the reason tree is deeper than %d levels", ReasonDepthMax)
					continue
				}
				walk(r.Reasons, fmt.Sprintf("%s.%d.reasons", path, i), depth+1)
			}
		}
	}
	walk(p.Reasons, "people.reasons", 1)
	if len(p.ReleaseMeaning) > 500 {
		add("people.release_meaning", "longer than 500 bytes")
	}
}
