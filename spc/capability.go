package spc

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Index is one capability or performance index with its confidence interval.
type Index struct {
	// Defined is false when the index needs a spec limit that is absent (Cp
	// and Pp need both); the other fields are then zero.
	Defined bool    `json:"defined"`
	Value   float64 `json:"value"`
	Lower   float64 `json:"lower"`
	Upper   float64 `json:"upper"`
	// Interval names the method of the confidence interval.
	Interval string `json:"interval"`
}

// Confidence interval methods.
const (
	// IntervalChiSquare is exact under normality (Cp, Pp).
	IntervalChiSquare = "chi-square"
	// IntervalNoncentralT is exact under normality for a one-sided index
	// (CPU, CPL, PPU, PPL): 3·√n·Ĉ has a noncentral t distribution with ν
	// degrees of freedom and noncentrality 3·√n·C (Chou, Owen and Borrego,
	// J. Quality Technology 22, 1990), as SAS/QC computes it.
	IntervalNoncentralT = "noncentral t"
	// IntervalBissell is Bissell's (1990) normal approximation, for Cpk and
	// Ppk of a two-sided spec.
	IntervalBissell = "Bissell (1990) normal approximation"
)

// CapabilityOptions configure Capability.
type CapabilityOptions struct {
	// Chart says how the within-subgroup sigma of Cp and Cpk is estimated:
	// MR̄/d2 (MethodIMR), R̄/d2 (MethodXbarR) or S̄/c4 (MethodXbarS), with its
	// subgroup size and factor source.
	Chart ChartConfig `json:"chart"`
	// Confidence is the two-sided confidence level of the intervals.
	// Defaults to ConfidenceDefault (0.95).
	Confidence float64 `json:"confidence"`
	// NormalityAlpha is the level the normality test is judged at.
	// Defaults to NormalityAlphaDefault (0.05).
	NormalityAlpha float64 `json:"normality_alpha"`
}

// Defaults and limits of CapabilityOptions.
const (
	ConfidenceDefault     = 0.95
	NormalityAlphaDefault = 0.05
	// MinCapabilityValues is the fewest values a capability study is
	// computed from (the normality test needs them).
	MinCapabilityValues = MinNormalityValues
)

// Validate reports bad options with an error wrapping ErrConfig; zero
// Confidence and NormalityAlpha take their defaults.
func (o CapabilityOptions) Validate() error {
	if err := o.Chart.Validate(); err != nil {
		return err
	}
	if o.Confidence != 0 && !(o.Confidence > 0 && o.Confidence < 1) {
		return configError("capability Confidence %v; want 0 < confidence < 1 (0 for %v)", o.Confidence, ConfidenceDefault)
	}
	if o.NormalityAlpha != 0 && !(o.NormalityAlpha > 0 && o.NormalityAlpha < 1) {
		return configError("capability NormalityAlpha %v; want 0 < alpha < 1 (0 for %v)", o.NormalityAlpha, NormalityAlphaDefault)
	}
	return nil
}

// CapabilityReport is a capability study of one characteristic.
type CapabilityReport struct {
	Spec Spec `json:"spec"`
	// N is the number of values used (for subgroups, those in complete
	// subgroups); Subgroups the number of subgroups (N for individuals).
	N         int     `json:"n"`
	Subgroups int     `json:"subgroups"`
	Mean      float64 `json:"mean"`
	// SigmaWithin (MR̄/d2, R̄/d2 or S̄/c4, named by WithinEstimator) is the
	// short-term sigma of Cp and Cpk; SigmaOverall, the sample standard
	// deviation of all N values, the long-term sigma of Pp and Ppk.
	SigmaWithin     float64 `json:"sigma_within"`
	WithinEstimator string  `json:"within_estimator"`
	SigmaOverall    float64 `json:"sigma_overall"`
	// DFWithin and DFOverall are the degrees of freedom the intervals use:
	// k·(n − 1) for subgroups of n (N − 1 for individuals, an
	// approximation for MR̄/d2), and N − 1.
	DFWithin   int     `json:"df_within"`
	DFOverall  int     `json:"df_overall"`
	Confidence float64 `json:"confidence"`
	// OneSided is true when only one spec limit is given: Cp and Pp are then
	// undefined and Cpk (Ppk) is the one-sided index CPU or CPL (PPU, PPL).
	OneSided bool `json:"one_sided"`
	// Capability (within sigma): Cp = (USL − LSL)/6σ, CPU = (USL − x̄)/3σ,
	// CPL = (x̄ − LSL)/3σ, Cpk = min(CPU, CPL). Intervals: chi-square for
	// Cp, noncentral t for CPU and CPL (and so for a one-sided Cpk),
	// Bissell for a two-sided Cpk.
	Cp  Index `json:"cp"`
	Cpk Index `json:"cpk"`
	Cpu Index `json:"cpu"`
	Cpl Index `json:"cpl"`
	// Performance (overall sigma): the same formulas.
	Pp  Index `json:"pp"`
	Ppk Index `json:"ppk"`
	Ppu Index `json:"ppu"`
	Ppl Index `json:"ppl"`
	// Normality is the Anderson–Darling test of the N values.
	Normality Normality `json:"normality"`
}

// Caveat returns the English sentence a report states when the data reject
// normality, or "" when they do not.
func (r CapabilityReport) Caveat() string {
	if !r.Normality.Rejected {
		return ""
	}
	return fmt.Sprintf("capability indices assume a normal distribution; the data reject normality at p = %.3g (Anderson-Darling, n = %d)", r.Normality.P, r.Normality.N)
}

// Capability computes the capability study of points against spec. Errors:
// ErrConfig (bad options, an invalid spec or a spec with neither limit),
// ErrInvalidValue (naming the point), ErrNotEnoughData (fewer than
// MinCapabilityValues values or two subgroups), ErrNoVariation (a sigma of
// zero, or one so small against the spec limits that an index overflows).
func Capability(points []Point, spec Spec, opt CapabilityOptions) (CapabilityReport, error) {
	if err := opt.Validate(); err != nil {
		return CapabilityReport{}, err
	}
	if err := spec.Validate(); err != nil {
		return CapabilityReport{}, err
	}
	if !spec.LSL.Set && !spec.USL.Set {
		return CapabilityReport{}, configError("capability spec has neither LSL nor USL; want at least one")
	}
	if err := checkValues(points); err != nil {
		return CapabilityReport{}, err
	}
	if opt.Confidence == 0 {
		opt.Confidence = ConfidenceDefault
	}
	if opt.NormalityAlpha == 0 {
		opt.NormalityAlpha = NormalityAlphaDefault
	}
	cfg := opt.Chart
	used := points[:len(points)/cfg.N*cfg.N]
	if len(used) < MinCapabilityValues {
		return CapabilityReport{}, notEnough("values for a capability study", MinCapabilityValues, len(used))
	}
	lim, err := ComputeLimits(used, cfg)
	if err != nil {
		return CapabilityReport{}, err
	}
	mean, sd := meanSD(used)
	if !(sd > 0) {
		return CapabilityReport{}, noVariation("all values are equal")
	}
	values := make([]float64, len(used))
	for i, p := range used {
		values[i] = p.Value
	}
	norm, err := AndersonDarling(values, opt.NormalityAlpha)
	if err != nil {
		return CapabilityReport{}, err
	}
	r := CapabilityReport{
		Spec: spec, N: len(used), Subgroups: len(used) / cfg.N, Mean: mean,
		SigmaWithin: lim.Sigma, WithinEstimator: withinEstimator(cfg.Method), SigmaOverall: sd,
		DFWithin: len(used) - 1, DFOverall: len(used) - 1, Confidence: opt.Confidence,
		OneSided: !(spec.LSL.Set && spec.USL.Set), Normality: norm,
	}
	if cfg.Method != MethodIMR {
		r.DFWithin = r.Subgroups * (cfg.N - 1)
	}
	r.Cp, r.Cpk, r.Cpu, r.Cpl = indices(spec, mean, r.SigmaWithin, r.N, r.DFWithin, opt.Confidence)
	r.Pp, r.Ppk, r.Ppu, r.Ppl = indices(spec, mean, r.SigmaOverall, r.N, r.DFOverall, opt.Confidence)
	for _, ix := range []Index{r.Cp, r.Cpk, r.Cpu, r.Cpl, r.Pp, r.Ppk, r.Ppu, r.Ppl} {
		if !finite(ix.Value) || !finite(ix.Lower) || !finite(ix.Upper) {
			return CapabilityReport{}, noVariation("sigma is too small against the spec limits for a finite index")
		}
	}
	return r, nil
}

func withinEstimator(m Method) string {
	switch m {
	case MethodXbarR:
		return "R̄/d2"
	case MethodXbarS:
		return "S̄/c4"
	}
	return "MR̄/d2"
}

// indices computes (Cp, Cpk, CPU, CPL) for one sigma. n is the number of
// values, df the degrees of freedom of sigma.
func indices(spec Spec, mean, sigma float64, n, df int, conf float64) (cp, cpk, cpu, cpl Index) {
	alpha := 1 - conf
	if spec.USL.Set {
		cpu = oneSided((spec.USL.Value-mean)/(3*sigma), n, df, alpha)
	}
	if spec.LSL.Set {
		cpl = oneSided((mean-spec.LSL.Value)/(3*sigma), n, df, alpha)
	}
	switch {
	case cpu.Defined && cpl.Defined:
		cp = chiSquare((spec.USL.Value-spec.LSL.Value)/(6*sigma), df, alpha)
		cpk = bissell(math.Min(cpu.Value, cpl.Value), n, df, alpha)
	case cpu.Defined:
		cpk = cpu
	default:
		cpk = cpl
	}
	return cp, cpk, cpu, cpl
}

// chiSquare is Cp with its exact interval: Cp·√(χ²(α/2; ν)/ν) to
// Cp·√(χ²(1−α/2; ν)/ν), ν = df.
func chiSquare(c float64, df int, alpha float64) Index {
	chi := distuv.ChiSquared{K: float64(df)}
	nu := float64(df)
	return Index{
		Defined: true, Value: c, Interval: IntervalChiSquare,
		Lower: c * math.Sqrt(chi.Quantile(alpha/2)/nu),
		Upper: c * math.Sqrt(chi.Quantile(1-alpha/2)/nu),
	}
}

// bissell is a one-sided index or Cpk with Bissell's (1990) interval
// Ĉ ± z(1−α/2)·√(1/(9n) + Ĉ²/(2ν)), ν = df (n − 1 for the sample standard
// deviation, as Bissell and SAS/QC have it).
func bissell(c float64, n, df int, alpha float64) Index {
	z := distuv.UnitNormal.Quantile(1 - alpha/2)
	h := z * math.Sqrt(1/(9*float64(n))+c*c/(2*float64(df)))
	return Index{Defined: true, Value: c, Lower: c - h, Upper: c + h, Interval: IntervalBissell}
}

// oneSided is CPU or CPL with its exact noncentral-t interval: the
// noncentralities δ at which the observed t = 3·√n·Ĉ is the 1−α/2 and α/2
// quantile, divided by 3·√n. Where the series does not give an interval it
// falls back to Bissell's.
func oneSided(c float64, n, df int, alpha float64) Index {
	scale := 3 * math.Sqrt(float64(n))
	tObs := scale * c
	lo, okLo := noncentrality(tObs, float64(df), 1-alpha/2)
	hi, okHi := noncentrality(tObs, float64(df), alpha/2)
	if !okLo || !okHi || !(lo <= hi) {
		return bissell(c, n, df, alpha)
	}
	return Index{Defined: true, Value: c, Lower: lo / scale, Upper: hi / scale, Interval: IntervalNoncentralT}
}

// noncentrality solves P(T ≤ t | ν, δ) = p for δ by bisection; the CDF
// falls as δ grows.
func noncentrality(t, nu, p float64) (float64, bool) {
	f := func(d float64) float64 { return distuv.NoncentralT{Nu: nu, Mu: d}.CDF(t) - p }
	w := 10 * (1 + math.Abs(t)/math.Sqrt(nu))
	lo, hi := t-w, t+w
	for i := 0; f(lo) < 0 || f(hi) > 0; i++ {
		if i == 60 {
			return 0, false
		}
		lo, hi = lo-w, hi+w
		w *= 2
	}
	for i := 0; i < 200 && hi-lo > 1e-12*(1+math.Abs(lo)); i++ {
		m := (lo + hi) / 2
		v := f(m)
		if math.IsNaN(v) {
			return 0, false
		}
		if v > 0 {
			lo = m
		} else {
			hi = m
		}
	}
	d := (lo + hi) / 2
	return d, finite(d)
}
