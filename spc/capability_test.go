package spc_test

import (
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
