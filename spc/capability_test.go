package spc_test

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/keiline/keiline/spc"
)

// SAS/QC CAPABILITY, data set Cans, LSL 11.95, target 12, USL 12.05. SAS
// computes its Cp, CPL, CPU and Cpk from the sample standard deviation,
// which keiline (after AIAG) calls Pp, PPL, PPU and Ppk; its Cp interval is
// the chi-square one and its Cpk interval Bissell's.
func TestCapabilitySASCans(t *testing.T) {
	pts := asPoints(readValues(t, "sas_cans.txt"))
	spec := spc.Spec{LSL: spc.At(11.95), USL: spc.At(12.05), Target: spc.At(12)}
	r, err := spc.Capability(pts, spec, spc.CapabilityOptions{Chart: spc.ChartConfig{Method: spc.MethodIMR, N: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if r.N != 100 {
		t.Errorf("N = %d; want 100", r.N)
	}
	published(t, "mean", r.Mean, "12.0093")
	published(t, "Pp", r.Pp.Value, "0.354967")
	published(t, "Pp lower", r.Pp.Lower, "0.305565")
	published(t, "Pp upper", r.Pp.Upper, "0.404288")
	published(t, "PPL", r.Ppl.Value, "0.420991")
	published(t, "PPL lower", r.Ppl.Lower, "0.332644")
	published(t, "PPL upper", r.Ppl.Upper, "0.508117")
	published(t, "PPU", r.Ppu.Value, "0.288943")
	published(t, "PPU lower", r.Ppu.Lower, "0.211699")
	published(t, "PPU upper", r.Ppu.Upper, "0.365112")
	published(t, "Ppk", r.Ppk.Value, "0.288943")
	published(t, "Ppk lower", r.Ppk.Lower, "0.212210")
	published(t, "Ppk upper", r.Ppk.Upper, "0.365677")
	if r.Pp.Interval != spc.IntervalChiSquare || r.Ppk.Interval != spc.IntervalBissell {
		t.Errorf("intervals = %q, %q; want chi-square and Bissell", r.Pp.Interval, r.Ppk.Interval)
	}
	if r.OneSided || !r.Cp.Defined || !r.Cpk.Defined {
		t.Errorf("two-sided spec: OneSided %v, Cp defined %v, Cpk defined %v", r.OneSided, r.Cp.Defined, r.Cpk.Defined)
	}
}

// SAS/QC CAPABILITY, data set Trans: the fitted normal's mean and standard
// deviation and the Anderson–Darling statistic, with Pr > A² > 0.250.
func TestAndersonDarlingSASTrans(t *testing.T) {
	values := readValues(t, "sas_trans.txt")
	pts := asPoints(values)
	r, err := spc.Capability(pts, spc.Spec{LSL: spc.At(3.45), USL: spc.At(3.55)}, spc.CapabilityOptions{Chart: spc.ChartConfig{Method: spc.MethodIMR, N: 1}})
	if err != nil {
		t.Fatal(err)
	}
	published(t, "mean", r.Mean, "3.49533")
	published(t, "std dev", r.SigmaOverall, "0.032117")
	published(t, "A²", r.Normality.A2, "0.27840748")
	if !(r.Normality.P > 0.250) {
		t.Errorf("p = %v; published > 0.250", r.Normality.P)
	}
	if r.Normality.Rejected || r.Caveat() != "" {
		t.Errorf("normal data: rejected %v, caveat %q", r.Normality.Rejected, r.Caveat())
	}
}

// NAG Library g08ckf example: A², the adjusted A² and its upper tail
// probability.
func TestAndersonDarlingNAG(t *testing.T) {
	n, err := spc.AndersonDarling(readValues(t, "nag_g08ckfe.txt"), 0.05)
	if err != nil {
		t.Fatal(err)
	}
	published(t, "A²", n.A2, "0.165956")
	published(t, "adjusted A²", n.A2Adjusted, "0.171296")
	published(t, "p", n.P, "0.931155")
}

// Cp and Cpk stand on the within sigma of the chart: for individuals MR̄/d2,
// which for the NIST flow-rate data is 1.8778/1.128 (NIST 6.3.2.2).
func TestCapabilityWithinSigmaIsTheChartsSigma(t *testing.T) {
	pts := asPoints(readValues(t, "nist_flowrate.txt"))
	r, err := spc.Capability(pts, spc.Spec{LSL: spc.At(44), USL: spc.At(58)}, spc.CapabilityOptions{Chart: imr})
	if err != nil {
		t.Fatal(err)
	}
	sigma := 1.8778 / 1.128 // published MR̄ over the tabulated d2
	published(t, "σ within", r.SigmaWithin, strconv.FormatFloat(sigma, 'f', 4, 64))
	published(t, "Cp", r.Cp.Value, strconv.FormatFloat(14/(6*sigma), 'f', 3, 64))
	published(t, "Cpk", r.Cpk.Value, strconv.FormatFloat((50.81-44)/(3*sigma), 'f', 3, 64)) // CPL, the nearer limit
	if r.WithinEstimator != "MR̄/d2" || r.DFWithin != 9 || r.N != 10 {
		t.Errorf("estimator %q, df %d, n %d; want MR̄/d2, 9, 10", r.WithinEstimator, r.DFWithin, r.N)
	}
}

// With one spec limit Cp and Pp are undefined and Cpk is the one-sided
// index with its exact interval.
func TestCapabilityOneSided(t *testing.T) {
	pts := asPoints(readValues(t, "sas_cans.txt"))
	r, err := spc.Capability(pts, spc.Spec{USL: spc.At(12.05)}, spc.CapabilityOptions{Chart: imr})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OneSided || r.Cp.Defined || r.Pp.Defined || r.Cpl.Defined {
		t.Errorf("one-sided: OneSided %v, Cp %v, Pp %v, Cpl %v", r.OneSided, r.Cp.Defined, r.Pp.Defined, r.Cpl.Defined)
	}
	if r.Ppk != r.Ppu || r.Ppk.Interval != spc.IntervalNoncentralT {
		t.Errorf("Ppk = %+v; want PPU %+v with the noncentral-t interval", r.Ppk, r.Ppu)
	}
	published(t, "PPU", r.Ppu.Value, "0.288943") // SAS/QC Cans, as in the two-sided study
}

// Skewed data are rejected as normal, and the report says so.
func TestCapabilityNormalityCaveat(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	values := make([]float64, 200)
	for i := range values {
		values[i] = 10 + r.ExpFloat64()
	}
	rep, err := spc.Capability(asPoints(values), spc.Spec{USL: spc.At(20)}, spc.CapabilityOptions{Chart: imr})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Normality.Rejected || !(rep.Normality.P < 0.001) {
		t.Errorf("exponential data: p = %v, rejected %v", rep.Normality.P, rep.Normality.Rejected)
	}
	if c := rep.Caveat(); !strings.Contains(c, "reject normality at p = ") {
		t.Errorf("caveat %q", c)
	}
}

// Subgroup studies estimate the within sigma as the X̄-R or X̄-S chart does.
func TestCapabilitySubgroups(t *testing.T) {
	var values []float64
	for _, row := range readNumbers(t, "sas_disks.txt") {
		values = append(values, row[1:]...)
	}
	cfg := spc.ChartConfig{Method: spc.MethodXbarR, N: 6, Factors: spc.FactorsExact}
	r, err := spc.Capability(asPoints(values), spc.Spec{LSL: spc.At(7.8), USL: spc.At(8.2)}, spc.CapabilityOptions{Chart: cfg})
	if err != nil {
		t.Fatal(err)
	}
	published(t, "σ within", r.SigmaWithin, "0.048927") // SAS/QC Disklim _STDDEV_
	if r.Subgroups != 25 || r.DFWithin != 125 || r.WithinEstimator != "R̄/d2" {
		t.Errorf("subgroups %d, df %d, estimator %q; want 25, 125, R̄/d2", r.Subgroups, r.DFWithin, r.WithinEstimator)
	}
}
