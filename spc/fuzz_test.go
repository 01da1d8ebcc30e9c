package spc_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/keiline/keiline/spc"
)

// fuzzValues decodes outside data as float64s, eight bytes each, so NaN,
// ±Inf, denormals and huge values all occur.
func fuzzValues(b []byte) []float64 {
	out := make([]float64, 0, len(b)/8)
	for len(b) >= 8 {
		out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(b)))
		b = b[8:]
	}
	return out
}

func encode(values ...float64) []byte {
	b := make([]byte, 0, 8*len(values))
	for _, v := range values {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

// typed reports whether err is one of the package's classified errors.
func typed(err error) bool {
	return errors.Is(err, spc.ErrNotEnoughData) || errors.Is(err, spc.ErrInvalidValue) ||
		errors.Is(err, spc.ErrNoVariation) || errors.Is(err, spc.ErrConfig)
}

// allFinite reports the path of the first non-finite float64 in v, or "".
func allFinite(v reflect.Value, path string) string {
	switch v.Kind() {
	case reflect.Float64:
		if math.IsNaN(v.Float()) || math.IsInf(v.Float(), 0) {
			return path
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if p := allFinite(v.Field(i), path+"."+v.Type().Field(i).Name); p != "" {
				return p
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if p := allFinite(v.Index(i), path+"[]"); p != "" {
				return p
			}
		}
	}
	return ""
}

var fuzzConfigs = []spc.ChartConfig{
	{Method: spc.MethodIMR, N: 1},
	{Method: spc.MethodXbarR, N: 2},
	{Method: spc.MethodXbarR, N: 5, Factors: spc.FactorsExact},
	{Method: spc.MethodXbarS, N: 3},
	{Method: spc.MethodXbarS, N: 25},
	{Method: "p-chart", N: 1},
	{Method: spc.MethodXbarR, N: 26},
}

func seeds(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(0), encode(5, 5, 5, 5, 5, 5, 5, 5, 5, 5))
	f.Add(uint8(0), encode(1, 2, math.NaN(), 4))
	f.Add(uint8(1), encode(1, 2, 3, math.Inf(1), 5, 6))
	f.Add(uint8(2), encode(49.6, 47.6, 49.9, 51.3, 47.8, 51.2, 52.6, 52.4, 53.6, 52.1))
	f.Add(uint8(3), encode(1e308, -1e308, 1e308, -1e308, 0, 1, 2, 3, 4))
	f.Add(uint8(4), encode(1e17, 1e17+16, 1e17, 1e17+32, 1e17, 1e17, 1e17, 1e17, 1e17))
	f.Add(uint8(5), encode(5e-324, 0, 5e-324, 0, 5e-324, 0, 0, 0, 0))
}

// FuzzChart drives outside values through ComputeLimits, Check and
// RenderSVG: each either succeeds with finite numbers (and a well-formed
// SVG) or fails with a typed error; none panics.
func FuzzChart(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		values := fuzzValues(data)
		cfg := fuzzConfigs[int(mode)%len(fuzzConfigs)]
		pts := asPoints(values)
		l, err := spc.ComputeLimits(pts, cfg)
		if err != nil {
			if !typed(err) {
				t.Fatalf("ComputeLimits: untyped error %v", err)
			}
			return
		}
		if p := allFinite(reflect.ValueOf(l), "Limits"); p != "" {
			t.Fatalf("ComputeLimits gave non-finite %s: %+v", p, l)
		}
		c, err := spc.Check(l, pts, append(spc.NelsonRules, spc.WesternElectricRules...))
		if err != nil {
			if !typed(err) {
				t.Fatalf("Check: untyped error %v", err)
			}
			return
		}
		if p := allFinite(reflect.ValueOf(c), "Chart"); p != "" {
			t.Fatalf("Check gave non-finite %s", p)
		}
		for _, v := range c.Violations {
			if v.From < 0 || v.To != v.Index || v.Index >= len(c.Points) || v.From > v.To {
				t.Fatalf("violation %+v outside %d points", v, len(c.Points))
			}
		}
		b, err := spc.RenderSVG(c, spc.SVGOptions{Labels: spc.Labels{Title: string(data)}})
		if err != nil {
			if !typed(err) {
				t.Fatalf("RenderSVG: untyped error %v", err)
			}
			return
		}
		if bytes.Contains(b, []byte("NaN")) || bytes.Contains(b, []byte("Inf")) {
			t.Fatalf("SVG has a non-finite number")
		}
		if strings.Count(string(b), "<svg") != 1 {
			t.Fatalf("SVG has %d <svg> elements", strings.Count(string(b), "<svg"))
		}
		parseSVG(t, b)
	})
}

// FuzzCapability drives outside values and spec limits through Capability.
func FuzzCapability(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		values := fuzzValues(data)
		spec := spc.Spec{}
		if len(values) >= 2 {
			spec.LSL, spec.USL = spc.At(values[0]), spc.At(values[1])
			values = values[2:]
		}
		switch mode % 3 {
		case 1:
			spec.LSL = spc.Bound{}
		case 2:
			spec.USL = spc.Bound{}
		}
		r, err := spc.Capability(asPoints(values), spec, spc.CapabilityOptions{Chart: fuzzConfigs[int(mode/3)%len(fuzzConfigs)]})
		if err != nil {
			if !typed(err) {
				t.Fatalf("Capability: untyped error %v", err)
			}
			return
		}
		if p := allFinite(reflect.ValueOf(r), "CapabilityReport"); p != "" {
			t.Fatalf("Capability gave non-finite %s: %+v", p, r)
		}
		if r.Normality.P < 0 || r.Normality.P > 1 {
			t.Fatalf("p = %v", r.Normality.P)
		}
	})
}
