// Package spc is keiline's statistical process control: the computations a
// quality engineer trusts for every torque and test value the record keeps.
//
// It is pure: functions and small value types, no I/O, no database, no
// goroutines. The record reads a characteristic's values (from the joints and
// test_results tables) into a []Point; this package turns them into
//
//   - control limits computed from a baseline window the engineer chooses
//     (ComputeLimits) and then frozen: a Limits value is stored and applied to
//     new points (Check) without ever being recomputed;
//   - charts: individuals and moving range (I-MR), X̄-R and X̄-S, with the
//     Nelson and Western Electric run rules the characteristic selects;
//   - capability: Cp, Cpk, Pp, Ppk with confidence intervals and an
//     Anderson–Darling normality check (Capability);
//   - a server-rendered SVG of a chart (RenderSVG).
//
// Bad input (NaN, ±Inf, too few values, no variation) gives a typed error
// (ErrInvalidValue, ErrNotEnoughData, ErrNoVariation, ErrConfig), never a
// panic and never a NaN in a result.
//
// References: NIST/SEMATECH e-Handbook of Statistical Methods, sections 6.3.2
// (variables control charts) and 1.3.5.14 (Anderson–Darling); AIAG,
// Statistical Process Control reference manual, 2nd ed.; ASTM MNL 7, Manual
// on Presentation of Data and Control Chart Analysis (the factor table);
// L. S. Nelson, "The Shewhart Control Chart — Tests for Special Causes",
// J. Quality Technology 16 (1984) 237–239; Western Electric, Statistical
// Quality Control Handbook (1956); A. F. Bissell, "How Reliable is Your
// Capability Index?", Applied Statistics 39 (1990) 331–340; M. A. Stephens,
// "Tests based on EDF statistics", in D'Agostino and Stephens (eds.),
// Goodness-of-Fit Techniques (1986), Table 4.9.
package spc
