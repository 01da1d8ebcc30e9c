package spc

import (
	"math"
	"time"
)

// Method is the kind of control chart: a location chart (individuals or
// subgroup means) with its dispersion chart.
type Method string

const (
	// MethodIMR charts each result (subgroup size 1) with the moving range
	// of two consecutive results: I chart X̄ ± 3·MR̄/d2, MR chart
	// [0, D4·MR̄] with d2 and D4 for n = 2.
	MethodIMR Method = "i-mr"
	// MethodXbarR charts the means of subgroups of n (2 to 25) with their
	// ranges: X̿ ± A2·R̄ and [D3·R̄, D4·R̄].
	MethodXbarR Method = "xbar-r"
	// MethodXbarS charts the means of subgroups of n (2 to 25) with their
	// sample standard deviations: X̿ ± A3·S̄ and [B3·S̄, B4·S̄].
	MethodXbarS Method = "xbar-s"
)

// ChartConfig says how a characteristic is charted.
type ChartConfig struct {
	Method Method `json:"method"`
	// N is the subgroup size: 1 for MethodIMR (each car on its own), 2 to
	// 25 consecutive results for MethodXbarR and MethodXbarS.
	N int `json:"n"`
	// Factors chooses the factor table. Defaults to FactorsTabulated.
	Factors FactorSource `json:"factors"`
}

// Validate reports a bad method, subgroup size or factor source with an
// error wrapping ErrConfig that names the field and the allowed values.
func (c ChartConfig) Validate() error {
	switch c.Method {
	case MethodIMR:
		if c.N != 1 {
			return configError("chart N %d for %s; want 1", c.N, c.Method)
		}
	case MethodXbarR, MethodXbarS:
		if c.N < 2 || c.N > SubgroupMax {
			return configError("chart N %d for %s; want 2 to %d", c.N, c.Method, SubgroupMax)
		}
	default:
		return configError("chart method %q; want %q, %q or %q", c.Method, MethodIMR, MethodXbarR, MethodXbarS)
	}
	if c.Factors != FactorsTabulated && c.Factors != FactorsExact {
		return configError("chart factors %d; want FactorsTabulated or FactorsExact", int(c.Factors))
	}
	return nil
}

// factorN is the subgroup size whose factors the chart uses (2 for the
// moving range of individuals).
func (c ChartConfig) factorN() int { return max(c.N, 2) }

// Lines are one chart's centre line and control limits.
type Lines struct {
	Centre float64 `json:"centre"`
	UCL    float64 `json:"ucl"`
	LCL    float64 `json:"lcl"`
}

// Baseline identifies the window the limits were computed from: its first
// and last points and how many points and plotted subgroups it holds.
type Baseline struct {
	FirstID   string    `json:"first_id"`
	LastID    string    `json:"last_id"`
	FirstTime time.Time `json:"first_time"`
	LastTime  time.Time `json:"last_time"`
	Points    int       `json:"points"`
	Subgroups int       `json:"subgroups"`
}

// Limits are control limits frozen from a baseline. They are computed once
// by ComputeLimits, stored with the characteristic, and applied by Check to
// any later points without being recomputed.
type Limits struct {
	Chart    ChartConfig `json:"chart"`
	Baseline Baseline    `json:"baseline"`
	// Location is the I chart (MethodIMR) or X̄ chart.
	Location Lines `json:"location"`
	// Dispersion is the MR, R or S chart.
	Dispersion Lines `json:"dispersion"`
	// Sigma is the within-subgroup standard deviation the limits stand on:
	// MR̄/d2, R̄/d2 or S̄/c4.
	Sigma float64 `json:"sigma"`
}

// Validate reports limits that cannot be applied: a bad chart config,
// non-finite lines, or limits not around their centre. It returns an error
// wrapping ErrConfig.
func (l Limits) Validate() error {
	if err := l.Chart.Validate(); err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		l    Lines
	}{{"location", l.Location}, {"dispersion", l.Dispersion}} {
		if !finite(c.l.Centre) || !finite(c.l.UCL) || !finite(c.l.LCL) {
			return configError("limits %s lines %+v; want finite numbers", c.name, c.l)
		}
		if !(c.l.LCL <= c.l.Centre && c.l.Centre <= c.l.UCL && c.l.LCL < c.l.UCL) {
			return configError("limits %s lines %+v; want LCL ≤ centre ≤ UCL and LCL < UCL", c.name, c.l)
		}
	}
	if !finite(l.Sigma) || l.Sigma <= 0 {
		return configError("limits sigma %v; want a positive number", l.Sigma)
	}
	return nil
}

// Minimum baselines: the mathematical minimum to compute limits at all.
// AIAG asks for RecommendedSubgroups (25) subgroups before limits are
// trusted; the dashboard should say so when a baseline is shorter.
const (
	MinBaselineSubgroups = 2
	RecommendedSubgroups = 25
)

// ComputeLimits computes control limits from baseline, the window of points
// the engineer chose, charted as cfg says. Subgroups are consecutive runs of
// cfg.N points; a trailing incomplete subgroup is left out. Errors: ErrConfig
// (bad cfg), ErrInvalidValue (NaN or ±Inf, naming the point),
// ErrNotEnoughData (fewer than two subgroups), ErrNoVariation (no moving
// range, range or standard deviation above zero).
func ComputeLimits(baseline []Point, cfg ChartConfig) (Limits, error) {
	if err := cfg.Validate(); err != nil {
		return Limits{}, err
	}
	if err := checkValues(baseline); err != nil {
		return Limits{}, err
	}
	f, err := FactorsFor(cfg.factorN(), cfg.Factors)
	if err != nil {
		return Limits{}, err
	}
	var lim Limits
	switch cfg.Method {
	case MethodIMR:
		lim, err = imrLimits(baseline, f)
	default:
		sg := subgroups(baseline, cfg.N)
		if len(sg) < MinBaselineSubgroups {
			return Limits{}, notEnough("subgroups of "+itoa(cfg.N)+" for "+string(cfg.Method)+" limits", MinBaselineSubgroups, len(sg))
		}
		lim, err = subgroupLimits(sg, cfg.Method, f)
	}
	if err != nil {
		return Limits{}, err
	}
	lim.Chart = cfg
	if err := lim.Validate(); err != nil {
		// Only a sigma below the precision of the values gets here: the
		// limits coincide with the centre line.
		return Limits{}, noVariation("the baseline's variation is below the precision of its values")
	}
	used := len(baseline)
	if cfg.Method != MethodIMR {
		used = len(baseline) / cfg.N * cfg.N
	}
	lim.Baseline = Baseline{
		FirstID: baseline[0].ID, LastID: baseline[used-1].ID,
		FirstTime: baseline[0].Time, LastTime: baseline[used-1].Time,
		Points: used, Subgroups: used / cfg.N,
	}
	return lim, nil
}

func imrLimits(points []Point, f Factors) (Limits, error) {
	if len(points) < MinBaselineSubgroups {
		return Limits{}, notEnough("individuals for i-mr limits", MinBaselineSubgroups, len(points))
	}
	sum, mrSum := 0.0, 0.0
	for i, p := range points {
		sum += p.Value
		if i > 0 {
			mrSum += math.Abs(p.Value - points[i-1].Value)
		}
	}
	mean := sum / float64(len(points))
	mrBar := mrSum / float64(len(points)-1)
	if !(mrBar > 0) {
		return Limits{}, noVariation("the baseline's moving ranges are all zero")
	}
	sigma := mrBar / f.D2
	return Limits{
		Location:   Lines{Centre: mean, UCL: mean + 3*sigma, LCL: mean - 3*sigma},
		Dispersion: Lines{Centre: mrBar, UCL: f.D4 * mrBar, LCL: f.D3 * mrBar},
		Sigma:      sigma,
	}, nil
}

// subgroupLimits computes X̄-R or X̄-S limits from subgroup statistics.
func subgroupLimits(sg []subgroup, m Method, f Factors) (Limits, error) {
	k := float64(len(sg))
	var grand, rBar, sBar float64
	for _, g := range sg {
		grand += g.mean
		rBar += g.rng
		sBar += g.sd
	}
	grand, rBar, sBar = grand/k, rBar/k, sBar/k
	if m == MethodXbarR {
		if !(rBar > 0) {
			return Limits{}, noVariation("every baseline subgroup has a range of zero")
		}
		return Limits{
			Location:   Lines{Centre: grand, UCL: grand + f.A2*rBar, LCL: grand - f.A2*rBar},
			Dispersion: Lines{Centre: rBar, UCL: f.D4 * rBar, LCL: f.D3 * rBar},
			Sigma:      rBar / f.D2,
		}, nil
	}
	if !(sBar > 0) {
		return Limits{}, noVariation("every baseline subgroup has a standard deviation of zero")
	}
	return Limits{
		Location:   Lines{Centre: grand, UCL: grand + f.A3*sBar, LCL: grand - f.A3*sBar},
		Dispersion: Lines{Centre: sBar, UCL: f.B4 * sBar, LCL: f.B3 * sBar},
		Sigma:      sBar / f.C4,
	}, nil
}
