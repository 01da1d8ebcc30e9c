package line

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keiline/keiline/internal/vin"
)

// ManifestSlotsMax is the most manifest slots a framing station may have.
const ManifestSlotsMax = 32

// ManifestTags are the tag suffixes of one manifest slot (Manifest1.Seq …).
// The MES writes a slot's other tags first and Seq last; a slot with Seq 0
// is empty. Manifest.LastSeq (written by the PLC) is the sequence number of
// the last car framed.
var ManifestTags = []string{"Seq", "Vin", "Model", "Variant", "Colour", "Options"}

// ManifestLastSeq is the framing PLC's tag holding the last framed car's
// sequence number.
const ManifestLastSeq = "Manifest.LastSeq"

// Products are what a line builds: the VIN's fixed parts, the models with
// their variants and the options each implies, and the paint colours.
// Orders are checked against them.
type Products struct {
	// WMI is the 3-character world manufacturer identifier (VIN 1-3).
	WMI string `yaml:"wmi"`
	// ModelYear is stamped into VIN position 10 (2010-2069).
	ModelYear int `yaml:"model_year"`
	// PlantCode is VIN position 11: one character.
	PlantCode string `yaml:"plant_code"`
	// Models the line builds.
	Models []Model `yaml:"models"`
	// Colours are the paint colours.
	Colours []string `yaml:"colours"`
	// Options are option codes an order may carry besides those its
	// variant implies (a sunroof).
	Options []string `yaml:"options,omitempty"`
}

// Model is one model and its variants.
type Model struct {
	// Code is the 2-character model code (VIN 4-5), e.g. KV.
	Code string `yaml:"code"`
	// Name for people.
	Name string `yaml:"name,omitempty"`
	// Body is the VIN body character (VIN 6).
	Body string `yaml:"body"`
	// Options every variant of the model implies (EV).
	Options  []string  `yaml:"options,omitempty"`
	Variants []Variant `yaml:"variants"`
}

// Variant is one variant of a model.
type Variant struct {
	// Name as orders spell it, e.g. 4WD.
	Name string `yaml:"name"`
	// Code is the 2-character VIN code (VIN 7-8).
	Code string `yaml:"code"`
	// Options the variant implies (4WD, TURBO).
	Options []string `yaml:"options,omitempty"`
}

// Sequencing are the line's sequencing rules.
type Sequencing struct {
	// Options are ratio rules p/q on option codes: at most P of any Q
	// consecutive cars.
	Options []Ratio `yaml:"options,omitempty"`
	// Models are model-mix levelling (heijunka) rules on model codes.
	Models []Ratio `yaml:"models,omitempty"`
	// ColourBatchMax is the longest run of one colour (0: no limit).
	ColourBatchMax int `yaml:"colour_batch_max,omitempty"`
	// Horizon is the most cars one plan sequences (a shift or a day).
	Horizon int `yaml:"horizon,omitempty"`
	// Station is the framing station whose manifest the MES fills.
	Station string `yaml:"station,omitempty"`
}

// Ratio is one p/q rule.
type Ratio struct {
	Name string `yaml:"name"`
	P    int    `yaml:"p"`
	Q    int    `yaml:"q"`
}

// Parts returns the rule's name, p and q.
func (r Ratio) Parts() (string, int, int) { return r.Name, r.P, r.Q }

func (r Ratio) String() string { return fmt.Sprintf("%s %d/%d", r.Name, r.P, r.Q) }

// Broadcast is the just-in-sequence (JIS) broadcast: when a car passes
// Station, each supplier is told the part variant the car needs.
type Broadcast struct {
	// Station is the broadcast point (trim in, T01).
	Station string `yaml:"station"`
	// Suppliers each get a broadcast of their own.
	Suppliers []Supplier `yaml:"suppliers"`
}

// Supplier is one just-in-sequence supplier.
type Supplier struct {
	// Name is the supplier's id, used in its subject (seats).
	Name string `yaml:"name"`
	// Part is the part number it delivers.
	Part string `yaml:"part"`
	// Install is the station that installs the part and checks it.
	Install string `yaml:"install"`
	// Variant is the part variant a car needs: a template whose {model},
	// {variant} and {colour} are the car's.
	Variant string `yaml:"variant"`
	// Models limits the supplier to these model codes (empty: all).
	Models []string `yaml:"models,omitempty"`
}

// PartVariant returns the part variant a car of model, variant and colour
// needs from the supplier, and whether the supplier delivers to it.
func (s Supplier) PartVariant(model, variant, colour string) (string, bool) {
	if len(s.Models) > 0 && !slices.Contains(s.Models, model) {
		return "", false
	}
	r := strings.NewReplacer("{model}", model, "{variant}", variant, "{colour}", colour)
	return r.Replace(s.Variant), true
}

// Model returns the model with code, or false.
func (p *Products) Model(code string) (*Model, bool) {
	for i := range p.Models {
		if p.Models[i].Code == code {
			return &p.Models[i], true
		}
	}
	return nil, false
}

// Variant returns the model's variant with name, or false.
func (m *Model) Variant(name string) (*Variant, bool) {
	for i := range m.Variants {
		if m.Variants[i].Name == name {
			return &m.Variants[i], true
		}
	}
	return nil, false
}

// ImpliedOptions returns the options a model and variant imply, sorted.
func (p *Products) ImpliedOptions(model, variant string) []string {
	m, ok := p.Model(model)
	if !ok {
		return nil
	}
	opts := append([]string(nil), m.Options...)
	if v, ok := m.Variant(variant); ok {
		opts = append(opts, v.Options...)
	}
	slices.Sort(opts)
	return slices.Compact(opts)
}

// AllOptions returns every option code the products know, sorted.
func (p *Products) AllOptions() []string {
	opts := append([]string(nil), p.Options...)
	for _, m := range p.Models {
		opts = append(opts, m.Options...)
		for _, v := range m.Variants {
			opts = append(opts, v.Options...)
		}
	}
	slices.Sort(opts)
	return slices.Compact(opts)
}

// VIN returns the VIN of the car with serial of model and variant.
func (p *Products) VIN(model, variant string, serial int) (string, error) {
	m, ok := p.Model(model)
	if !ok {
		return "", fmt.Errorf("model %q is not one of the line's", model)
	}
	v, ok := m.Variant(variant)
	if !ok {
		return "", fmt.Errorf("model %s has no variant %q", model, variant)
	}
	return vin.Make(p.WMI, m.Code+m.Body+v.Code, p.ModelYear, p.PlantCode[0], serial)
}

// validateProducts adds the problems of the products, sequencing, broadcast
// and manifest sections.
func (c *Config) validateProducts(add func(path, format string, a ...any)) {
	p := c.Products
	if p != nil {
		if len(p.WMI) != 3 {
			add("products.wmi", "%q must have 3 characters", p.WMI)
		}
		if p.ModelYear < 2010 || p.ModelYear > 2069 {
			add("products.model_year", "%d outside 2010-2069", p.ModelYear)
		}
		if len(p.PlantCode) != 1 {
			add("products.plant_code", "%q must be one character", p.PlantCode)
		}
		if len(p.Models) == 0 {
			add("products.models", "none configured")
		}
		seen := map[string]bool{}
		for i, m := range p.Models {
			at := func(f string) string { return fmt.Sprintf("products.models.%d.%s", i, f) }
			if len(m.Code) != 2 || !token(m.Code) {
				add(at("code"), "%q must be 2 characters", m.Code)
			} else if seen[m.Code] {
				add(at("code"), "%q is used twice", m.Code)
			}
			seen[m.Code] = true
			if len(m.Body) != 1 {
				add(at("body"), "%q must be one character", m.Body)
			}
			if len(m.Variants) == 0 {
				add(at("variants"), "none configured")
			}
			vseen := map[string]bool{}
			for j, v := range m.Variants {
				vat := func(f string) string { return fmt.Sprintf("products.models.%d.variants.%d.%s", i, j, f) }
				if strings.TrimSpace(v.Name) == "" || strings.ContainsAny(v.Name, ",;\t\r\n") {
					add(vat("name"), "%q must be a non-empty name without commas", v.Name)
				} else if vseen[v.Name] {
					add(vat("name"), "%q is used twice in model %s", v.Name, m.Code)
				}
				vseen[v.Name] = true
				if len(v.Code) != 2 {
					add(vat("code"), "%q must be 2 characters", v.Code)
				} else if len(m.Code) == 2 && len(m.Body) == 1 && len(p.WMI) == 3 && len(p.PlantCode) == 1 {
					if _, err := vin.Make(p.WMI, m.Code+m.Body+v.Code, p.ModelYear, p.PlantCode[0], 1); err != nil {
						add(vat("code"), "makes no valid VIN: %v", err)
					}
				}
			}
		}
		cseen := map[string]bool{}
		if len(p.Colours) == 0 {
			add("products.colours", "none configured")
		}
		for i, col := range p.Colours {
			if !token(col) || strings.Contains(col, ",") {
				add(fmt.Sprintf("products.colours.%d", i), "%q must be a word", col)
			} else if cseen[col] {
				add(fmt.Sprintf("products.colours.%d", i), "%q is used twice", col)
			}
			cseen[col] = true
		}
	}
	if s := c.Sequencing; s != nil {
		if p == nil {
			add("sequencing", "needs a products section")
		}
		for _, list := range []struct {
			what  string
			rules []Ratio
			known func(string) bool
		}{
			{"options", s.Options, func(n string) bool { return p != nil && slices.Contains(p.AllOptions(), n) }},
			{"models", s.Models, func(n string) bool {
				if p == nil {
					return false
				}
				_, ok := p.Model(n)
				return ok
			}},
		} {
			seen := map[string]bool{}
			for i, r := range list.rules {
				at := fmt.Sprintf("sequencing.%s.%d", list.what, i)
				switch {
				case r.Name == "":
					add(at, "rule has no name")
				case seen[r.Name]:
					add(at, "%q appears twice", r.Name)
				case r.P < 1 || r.Q < 1 || r.P > r.Q:
					add(at, "%s: need 1 ≤ p ≤ q", r)
				case p != nil && !list.known(r.Name):
					add(at, "%q is not one of the products' %s", r.Name, list.what)
				}
				seen[r.Name] = true
			}
		}
		if s.ColourBatchMax < 0 {
			add("sequencing.colour_batch_max", "%d is negative", s.ColourBatchMax)
		}
		if s.Horizon < 0 {
			add("sequencing.horizon", "%d is negative", s.Horizon)
		}
		if s.Station != "" {
			if st, ok := c.Station(s.Station); !ok {
				add("sequencing.station", "%q is not a station of the line", s.Station)
			} else if st.Manifest == 0 {
				add("sequencing.station", "station %s has no manifest slots", s.Station)
			}
		}
	}
	if b := c.Broadcast; b != nil {
		if _, ok := c.Station(b.Station); !ok {
			add("broadcast.station", "%q is not a station of the line", b.Station)
		}
		seen := map[string]bool{}
		for i, s := range b.Suppliers {
			at := func(f string) string { return fmt.Sprintf("broadcast.suppliers.%d.%s", i, f) }
			if !token(s.Name) {
				add(at("name"), "%q must be a non-empty word without dots or spaces", s.Name)
			} else if seen[s.Name] {
				add(at("name"), "%q is used twice", s.Name)
			}
			seen[s.Name] = true
			if s.Part == "" {
				add(at("part"), "missing")
			}
			if _, ok := c.Station(s.Install); !ok {
				add(at("install"), "%q is not a station of the line", s.Install)
			}
			if s.Variant == "" {
				add(at("variant"), "missing")
			}
			for _, m := range s.Models {
				if p == nil {
					break
				}
				if _, ok := p.Model(m); !ok {
					add(at("models"), "%q is not one of the products' models", m)
				}
			}
		}
	}
}
