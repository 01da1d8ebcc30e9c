package spc

import (
	"math"
	"slices"
)

// Normality is the result of the Anderson–Darling test that the values come
// from a normal distribution with unknown mean and variance (NIST/SEMATECH
// e-Handbook 1.3.5.14; Stephens 1986, case 3).
type Normality struct {
	Test string `json:"test"` // "Anderson-Darling"
	N    int    `json:"n"`
	// A2 is the statistic A² = −n − (1/n)·Σ (2i−1)·[ln Φ(z₍ᵢ₎) + ln(1 − Φ(z₍ₙ₊₁₋ᵢ₎))]
	// with z = (x − x̄)/s, s the sample standard deviation (n − 1).
	A2 float64 `json:"a2"`
	// A2Adjusted is A²·(1 + 0.75/n + 2.25/n²), the small-sample correction.
	A2Adjusted float64 `json:"a2_adjusted"`
	// P is the p-value from A2Adjusted by the piecewise formula of
	// D'Agostino and Stephens (1986), Table 4.9. Above A2Adjusted = 10,
	// outside that table, P is the formula's value at 10 (about 4e−24),
	// an upper bound.
	P float64 `json:"p"`
	// Alpha is the significance level the test was judged at; Rejected is
	// P < Alpha: the data reject normality.
	Alpha    float64 `json:"alpha"`
	Rejected bool    `json:"rejected"`
}

// MinNormalityValues is the fewest values the Anderson–Darling test is
// computed for (Stephens' p-value formula is for n ≥ 8).
const MinNormalityValues = 8

// AndersonDarling tests values for normality at significance alpha (0 < alpha
// < 1; 0.05 is usual). Errors: ErrNotEnoughData (fewer than
// MinNormalityValues), ErrInvalidValue (NaN or ±Inf, naming its index),
// ErrNoVariation (all values equal), ErrConfig (alpha out of range).
func AndersonDarling(values []float64, alpha float64) (Normality, error) {
	if !(alpha > 0 && alpha < 1) {
		return Normality{}, configError("normality alpha %v; want 0 < alpha < 1", alpha)
	}
	if len(values) < MinNormalityValues {
		return Normality{}, notEnough("values for the Anderson-Darling test", MinNormalityValues, len(values))
	}
	for i, v := range values {
		if !usable(v) {
			return Normality{}, &InvalidValueError{Index: i, Value: v}
		}
	}
	x := slices.Clone(values)
	slices.Sort(x)
	n := float64(len(x))
	sum := 0.0
	for _, v := range x {
		sum += v
	}
	mean := sum / n
	ss := 0.0
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	s := math.Sqrt(ss / (n - 1))
	if !(s > 0) || x[0] == x[len(x)-1] {
		return Normality{}, noVariation("all values are equal")
	}
	total := 0.0
	for i := range x {
		lo := (x[i] - mean) / s
		hi := (x[len(x)-1-i] - mean) / s
		total += float64(2*i+1) * (logPhi(lo) + logPhi(-hi))
	}
	a2 := -n - total/n
	adj := a2 * (1 + 0.75/n + 2.25/(n*n))
	p := adPValue(adj)
	return Normality{Test: "Anderson-Darling", N: len(x), A2: a2, A2Adjusted: adj, P: p, Alpha: alpha, Rejected: p < alpha}, nil
}

// adPValue is D'Agostino and Stephens (1986), Table 4.9, for the adjusted
// statistic of case 3 (mean and variance estimated).
func adPValue(a float64) float64 {
	a = min(a, 10)
	switch {
	case a < 0.2:
		return 1 - math.Exp(-13.436+101.14*a-223.73*a*a)
	case a < 0.34:
		return 1 - math.Exp(-8.318+42.796*a-59.938*a*a)
	case a < 0.6:
		return math.Exp(0.9177 - 4.279*a - 1.38*a*a)
	default:
		return math.Exp(1.2937 - 5.709*a + 0.0186*a*a)
	}
}

// logPhi is ln Φ(z), finite for every finite z: below −30, where Φ
// underflows, the asymptotic series −z²/2 − ln(−z) − ln(2π)/2.
func logPhi(z float64) float64 {
	if z > -30 {
		return math.Log(0.5 * math.Erfc(-z/math.Sqrt2))
	}
	return -z*z/2 - math.Log(-z) - 0.5*math.Log(2*math.Pi)
}
