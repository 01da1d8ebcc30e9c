package spc

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/integrate/quad"
)

// FactorSource chooses where the control chart factors come from.
type FactorSource int

const (
	// FactorsTabulated is the published table (ASTM MNL 7, reprinted in the
	// AIAG SPC manual and in Montgomery, Introduction to Statistical Quality
	// Control, Appendix VI): d2 = 1.128 and D4 = 3.267 for a moving range of
	// two. It gives the figures an engineer gets by hand and is the default.
	FactorsTabulated FactorSource = iota
	// FactorsExact computes the factors from their definitions to full
	// double precision (d2 and d3 by numerical integration of the
	// distribution of the range of n normal values, c4 from the gamma
	// function), as SAS/QC and Minitab do.
	FactorsExact
)

// String names the source.
func (s FactorSource) String() string {
	switch s {
	case FactorsTabulated:
		return "tabulated"
	case FactorsExact:
		return "exact"
	}
	return "unknown"
}

// MarshalText writes the source as "tabulated" or "exact", so stored limits
// read as what they are.
func (s FactorSource) MarshalText() ([]byte, error) {
	switch s {
	case FactorsTabulated, FactorsExact:
		return []byte(s.String()), nil
	}
	return nil, configError("factor source %d; want tabulated or exact", int(s))
}

// UnmarshalText reads "tabulated" or "exact"; anything else is an error
// wrapping ErrConfig.
func (s *FactorSource) UnmarshalText(b []byte) error {
	switch string(b) {
	case "tabulated":
		*s = FactorsTabulated
	case "exact":
		*s = FactorsExact
	default:
		return configError("factor source %q; want tabulated or exact", string(b))
	}
	return nil
}

// Factors are the control chart factors for subgroups of N (N = 2 to 25).
type Factors struct {
	N int `json:"n"`
	// D2 is d2, the expected range of N standard normal values; R̄/d2
	// estimates sigma.
	D2 float64 `json:"d2"`
	// RangeSD is d3, the standard deviation of that range.
	RangeSD float64 `json:"d3"`
	// C4 is the expected sample standard deviation (N − 1 divisor) of N
	// standard normal values; S̄/c4 estimates sigma.
	C4 float64 `json:"c4"`
	A2 float64 `json:"a2"` // X̄ chart limits X̿ ± A2·R̄; A2 = 3/(d2·√N)
	A3 float64 `json:"a3"` // X̄ chart limits X̿ ± A3·S̄; A3 = 3/(c4·√N)
	D3 float64 `json:"D3"` // R chart LCL = D3·R̄; D3 = max(0, 1 − 3·d3/d2)
	D4 float64 `json:"D4"` // R chart UCL = D4·R̄; D4 = 1 + 3·d3/d2
	B3 float64 `json:"b3"` // S chart LCL = B3·S̄; B3 = max(0, 1 − 3·√(1−c4²)/c4)
	B4 float64 `json:"b4"` // S chart UCL = B4·S̄; B4 = 1 + 3·√(1−c4²)/c4
}

// tabulated is the published factor table, n = 2..25, columns
// A2 A3 c4 B3 B4 d2 d3 D3 D4: ASTM MNL 7 as reprinted in Montgomery,
// Introduction to Statistical Quality Control, Appendix VI, and in Joglekar,
// Statistical Methods for Six Sigma (2003), Appendix G (rows 22–25).
var tabulated = [...][9]float64{
	2:  {1.880, 2.659, 0.7979, 0, 3.267, 1.128, 0.853, 0, 3.267},
	3:  {1.023, 1.954, 0.8862, 0, 2.568, 1.693, 0.888, 0, 2.574},
	4:  {0.729, 1.628, 0.9213, 0, 2.266, 2.059, 0.880, 0, 2.282},
	5:  {0.577, 1.427, 0.9400, 0, 2.089, 2.326, 0.864, 0, 2.114},
	6:  {0.483, 1.287, 0.9515, 0.030, 1.970, 2.534, 0.848, 0, 2.004},
	7:  {0.419, 1.182, 0.9594, 0.118, 1.882, 2.704, 0.833, 0.076, 1.924},
	8:  {0.373, 1.099, 0.9650, 0.185, 1.815, 2.847, 0.820, 0.136, 1.864},
	9:  {0.337, 1.032, 0.9693, 0.239, 1.761, 2.970, 0.808, 0.184, 1.816},
	10: {0.308, 0.975, 0.9727, 0.284, 1.716, 3.078, 0.797, 0.223, 1.777},
	11: {0.285, 0.927, 0.9754, 0.321, 1.679, 3.173, 0.787, 0.256, 1.744},
	12: {0.266, 0.886, 0.9776, 0.354, 1.646, 3.258, 0.778, 0.283, 1.717},
	13: {0.249, 0.850, 0.9794, 0.382, 1.618, 3.336, 0.770, 0.307, 1.693},
	14: {0.235, 0.817, 0.9810, 0.406, 1.594, 3.407, 0.763, 0.328, 1.672},
	15: {0.223, 0.789, 0.9823, 0.428, 1.572, 3.472, 0.756, 0.347, 1.653},
	16: {0.212, 0.763, 0.9835, 0.448, 1.552, 3.532, 0.750, 0.363, 1.637},
	17: {0.203, 0.739, 0.9845, 0.466, 1.534, 3.588, 0.744, 0.378, 1.622},
	18: {0.194, 0.718, 0.9854, 0.482, 1.518, 3.640, 0.739, 0.391, 1.608},
	19: {0.187, 0.698, 0.9862, 0.497, 1.503, 3.689, 0.734, 0.403, 1.597},
	20: {0.180, 0.680, 0.9869, 0.510, 1.490, 3.735, 0.729, 0.415, 1.585},
	21: {0.173, 0.663, 0.9876, 0.523, 1.477, 3.778, 0.724, 0.425, 1.575},
	22: {0.167, 0.647, 0.9882, 0.534, 1.466, 3.819, 0.720, 0.434, 1.566},
	23: {0.162, 0.633, 0.9887, 0.545, 1.455, 3.858, 0.716, 0.443, 1.557},
	24: {0.157, 0.619, 0.9892, 0.555, 1.445, 3.895, 0.712, 0.451, 1.548},
	25: {0.153, 0.606, 0.9896, 0.565, 1.435, 3.931, 0.708, 0.459, 1.541},
}

// FactorsFor returns the factors for subgroups of n (2 to 25) from src. A
// moving range of two consecutive individuals uses n = 2. It returns an
// error wrapping ErrConfig for any other n or an unknown source.
func FactorsFor(n int, src FactorSource) (Factors, error) {
	if n < 2 || n > SubgroupMax {
		return Factors{}, configError("factor subgroup size %d; want 2 to %d", n, SubgroupMax)
	}
	switch src {
	case FactorsTabulated:
		t := tabulated[n]
		return Factors{N: n, A2: t[0], A3: t[1], C4: t[2], B3: t[3], B4: t[4], D2: t[5], RangeSD: t[6], D3: t[7], D4: t[8]}, nil
	case FactorsExact:
		exactOnce.Do(computeExact)
		return exact[n], nil
	}
	return Factors{}, configError("factor source %d; want FactorsTabulated or FactorsExact", int(src))
}

var (
	exactOnce sync.Once
	exact     [SubgroupMax + 1]Factors
)

// Quadrature for the exact range moments: Gauss–Legendre on [−exactL, exactL]
// (the integrands vanish below 1e−18 outside ±9).
const (
	exactL     = 9.0
	exactNodes = 256
)

// computeExact fills exact[2..25]. With Φ the standard normal CDF,
//
//	d2 = E[W]  = ∫ 1 − Φ(t)ⁿ − (1 − Φ(t))ⁿ dt
//	E[W²]      = 2 ∫∫_{s<t} 1 − Φ(t)ⁿ − (1 − Φ(s))ⁿ + (Φ(t) − Φ(s))ⁿ ds dt
//	d3         = √(E[W²] − d2²)
//
// (W = ∫ 1{min ≤ t < max} dt, so W² is twice the integral over s < t of
// 1{min ≤ s, t < max}); c4 = √(2/(n−1))·Γ(n/2)/Γ((n−1)/2).
func computeExact() {
	x := make([]float64, exactNodes)
	w := make([]float64, exactNodes)
	quad.Legendre{}.FixedLocations(x, w, -exactL, exactL)
	var ew, ew2 [SubgroupMax + 1]float64
	sx := make([]float64, exactNodes)
	sw := make([]float64, exactNodes)
	for i, t := range x {
		pt, qt := phi(t), phi(-t)
		bn, an := pt, qt
		for n := 2; n <= SubgroupMax; n++ {
			bn *= pt
			an *= qt
			ew[n] += w[i] * (1 - bn - an)
		}
		quad.Legendre{}.FixedLocations(sx, sw, -exactL, t)
		for k, s := range sx {
			ps, qs := phi(s), phi(-s)
			c := pt - ps
			a, b, cc := qs, pt, c
			for n := 2; n <= SubgroupMax; n++ {
				a *= qs
				b *= pt
				cc *= c
				ew2[n] += 2 * w[i] * sw[k] * (1 - b - a + cc)
			}
		}
	}
	for n := 2; n <= SubgroupMax; n++ {
		d2 := ew[n]
		d3 := math.Sqrt(ew2[n] - d2*d2)
		lg1, _ := math.Lgamma(float64(n) / 2)
		lg2, _ := math.Lgamma(float64(n-1) / 2)
		c4 := math.Sqrt(2/float64(n-1)) * math.Exp(lg1-lg2)
		rn := math.Sqrt(float64(n))
		sc := 3 * math.Sqrt(1-c4*c4) / c4
		exact[n] = Factors{
			N: n, D2: d2, RangeSD: d3, C4: c4,
			A2: 3 / (d2 * rn), A3: 3 / (c4 * rn),
			D3: math.Max(0, 1-3*d3/d2), D4: 1 + 3*d3/d2,
			B3: math.Max(0, 1-sc), B4: 1 + sc,
		}
	}
}

// phi is the standard normal CDF.
func phi(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
