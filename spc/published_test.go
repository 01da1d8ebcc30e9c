package spc_test

import (
	"testing"

	"github.com/keiline/keiline/spc"
)

// NIST/SEMATECH e-Handbook 6.3.2.2: the flow-rate individuals chart, with
// the tabulated d2 = 1.128.
func TestIMRLimitsNISTFlowrate(t *testing.T) {
	pts := asPoints(readValues(t, "nist_flowrate.txt"))
	l, err := spc.ComputeLimits(pts, spc.ChartConfig{Method: spc.MethodIMR, N: 1})
	if err != nil {
		t.Fatal(err)
	}
	published(t, "x̄", l.Location.Centre, "50.81")
	published(t, "MR̄", l.Dispersion.Centre, "1.8778")
	published(t, "UCL", l.Location.UCL, "55.8041")
	published(t, "LCL", l.Location.LCL, "45.8159")
	if l.Baseline.Points != 10 || l.Baseline.FirstID != "P1" || l.Baseline.LastID != "P10" {
		t.Errorf("baseline = %+v; want points P1..P10", l.Baseline)
	}
}

// Montgomery and Runger, Table 16-3: the concentration individuals chart.
// The book's limits (UCL 105.99, LCL 92.21) are computed from the rounded
// x̄ = 99.1 and MR̄ = 2.59; from the data x̄ is 99.095, so only x̄ and MR̄ are
// compared to the published digits.
func TestIMRLimitsMontgomeryRungerConcentration(t *testing.T) {
	pts := asPoints(readValues(t, "mr_concentration.txt"))
	l, err := spc.ComputeLimits(pts, spc.ChartConfig{Method: spc.MethodIMR, N: 1})
	if err != nil {
		t.Fatal(err)
	}
	published(t, "x̄", l.Location.Centre, "99.1")
	published(t, "MR̄", l.Dispersion.Centre, "2.59")
}

// SAS/QC SHEWHART, data set Disks and its limits Disklim: X̄-R, n = 6,
// computed by SAS with exact factors.
func TestXbarRLimitsSASDisks(t *testing.T) {
	var values []float64
	for _, row := range readNumbers(t, "sas_disks.txt") {
		values = append(values, row[1:]...) // column 0 is the lot
	}
	l, err := spc.ComputeLimits(asPoints(values), spc.ChartConfig{Method: spc.MethodXbarR, N: 6, Factors: spc.FactorsExact})
	if err != nil {
		t.Fatal(err)
	}
	published(t, "X̿", l.Location.Centre, "8.00307")
	published(t, "X̄ LCL", l.Location.LCL, "7.94314")
	published(t, "X̄ UCL", l.Location.UCL, "8.06299")
	published(t, "R̄", l.Dispersion.Centre, "0.124")
	published(t, "R LCL", l.Dispersion.LCL, "0")
	published(t, "R UCL", l.Dispersion.UCL, "0.24847")
	published(t, "σ", l.Sigma, "0.048927")
	if l.Baseline.Subgroups != 25 || l.Baseline.Points != 150 {
		t.Errorf("baseline = %+v; want 25 subgroups of 6", l.Baseline)
	}
}
