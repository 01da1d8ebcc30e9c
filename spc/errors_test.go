package spc_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/keiline/keiline/spc"
)

// Bad input gives a typed error naming what the engineer needs, never a
// panic or a NaN.
func TestTypedErrors(t *testing.T) {
	withNaN := asPoints([]float64{1, 2, math.NaN(), 4})
	cases := []struct {
		name string
		err  func() error
		is   error
		msg  string
	}{
		{"limits from one point", func() error { _, err := spc.ComputeLimits(asPoints([]float64{1}), imr); return err }, spc.ErrNotEnoughData, "needs at least 2, has 1"},
		{"limits from no points", func() error { _, err := spc.ComputeLimits(nil, imr); return err }, spc.ErrNotEnoughData, "has 0"},
		{"one subgroup", func() error {
			_, err := spc.ComputeLimits(asPoints([]float64{1, 2, 3, 4, 5, 6}), spc.ChartConfig{Method: spc.MethodXbarR, N: 5})
			return err
		}, spc.ErrNotEnoughData, "subgroups of 5"},
		{"constant series", func() error { _, err := spc.ComputeLimits(asPoints(repeat(3, 20)), imr); return err }, spc.ErrNoVariation, "moving ranges are all zero"},
		{"NaN names the point", func() error { _, err := spc.ComputeLimits(withNaN, imr); return err }, spc.ErrInvalidValue, `point 2 (id "P3")`},
		{"Inf in Check", func() error {
			_, err := spc.Check(unitLimits, asPoints([]float64{1, math.Inf(-1)}), nil)
			return err
		}, spc.ErrInvalidValue, `point 1 (id "P2")`},
		{"huge value", func() error { _, err := spc.ComputeLimits(asPoints([]float64{1, 1e200}), imr); return err }, spc.ErrInvalidValue, "point 1"},
		{"bad method", func() error {
			_, err := spc.ComputeLimits(asPoints([]float64{1, 2}), spc.ChartConfig{Method: "c-chart", N: 1})
			return err
		}, spc.ErrConfig, `want "i-mr"`},
		{"subgroup of 30", func() error {
			_, err := spc.ComputeLimits(asPoints([]float64{1, 2}), spc.ChartConfig{Method: spc.MethodXbarS, N: 30})
			return err
		}, spc.ErrConfig, "want 2 to 25"},
		{"capability of 7 values", func() error {
			_, err := spc.Capability(asPoints([]float64{1, 2, 3, 4, 5, 6, 7}), spc.Spec{USL: spc.At(9)}, spc.CapabilityOptions{Chart: imr})
			return err
		}, spc.ErrNotEnoughData, "needs at least 8, has 7"},
		{"capability without spec", func() error {
			_, err := spc.Capability(asPoints(readValues(t, "sas_cans.txt")), spc.Spec{}, spc.CapabilityOptions{Chart: imr})
			return err
		}, spc.ErrConfig, "neither LSL nor USL"},
		{"capability of a constant", func() error {
			_, err := spc.Capability(asPoints(repeat(12, 30)), spc.Spec{LSL: spc.At(11), USL: spc.At(13)}, spc.CapabilityOptions{Chart: imr})
			return err
		}, spc.ErrNoVariation, ""},
		{"normality of a constant", func() error { _, err := spc.AndersonDarling(repeat(1, 10), 0.05); return err }, spc.ErrNoVariation, ""},
		{"spec LSL above USL", func() error { return spc.Spec{LSL: spc.At(5), USL: spc.At(4)}.Validate() }, spc.ErrConfig, "not below USL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.err()
			if !errors.Is(err, c.is) {
				t.Fatalf("error %v; want %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
		})
	}
	var nd *spc.NotEnoughDataError
	if _, err := spc.ComputeLimits(nil, imr); !errors.As(err, &nd) || nd.Need != 2 {
		t.Errorf("errors.As NotEnoughDataError: %v", err)
	}
}

// Limits are stored with the characteristic (as JSON in the record) and,
// read back, chart new points exactly as before.
func TestLimitsSurviveJSON(t *testing.T) {
	pts := asPoints(readValues(t, "sas_cans.txt"))
	l, err := spc.ComputeLimits(pts[:50], spc.ChartConfig{Method: spc.MethodXbarS, N: 5, Factors: spc.FactorsExact})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var back spc.Limits
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	c1, err1 := spc.Check(l, pts, spc.WesternElectricRules)
	c2, err2 := spc.Check(back, pts, spc.WesternElectricRules)
	if err1 != nil || err2 != nil || !reflect.DeepEqual(c1.Points, c2.Points) || !reflect.DeepEqual(c1.Violations, c2.Violations) {
		t.Errorf("charts differ after a JSON round trip (%v, %v)", err1, err2)
	}
	if !strings.Contains(string(b), `"method":"xbar-s"`) || !strings.Contains(string(b), `"first_id":"P1"`) {
		t.Errorf("stored limits %s lack the method or the baseline", b)
	}
}
