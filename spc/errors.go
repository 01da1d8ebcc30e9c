package spc

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps exactly one of
// them, so callers classify with errors.Is and show the message, which names
// what an engineer needs (the point's index and identity, what was needed).
var (
	// ErrNotEnoughData: the computation needs more values or subgroups than
	// it was given. The error is a *NotEnoughDataError.
	ErrNotEnoughData = errors.New("not enough data")
	// ErrInvalidValue: a value is NaN, ±Inf or beyond ±MaxAbsValue. The
	// error is an *InvalidValueError naming the point.
	ErrInvalidValue = errors.New("invalid value")
	// ErrNoVariation: the values do not vary (a constant series, or constant
	// within every subgroup), so no sigma, no limits and no index exist.
	ErrNoVariation = errors.New("no variation")
	// ErrConfig: a configuration (method, subgroup size, rules, spec limits,
	// limits, render options) is not valid. The message names the field and
	// the allowed values.
	ErrConfig = errors.New("invalid configuration")
)

// NotEnoughDataError says what needed more data, how much it needs and how
// much it had. It wraps ErrNotEnoughData.
type NotEnoughDataError struct {
	What string // e.g. "subgroups of 5 for X̄-R limits"
	Need int
	Have int
}

func (e *NotEnoughDataError) Error() string {
	return fmt.Sprintf("spc: not enough data: %s needs at least %d, has %d", e.What, e.Need, e.Have)
}

func (e *NotEnoughDataError) Unwrap() error { return ErrNotEnoughData }

// InvalidValueError names a point whose value cannot be used. It wraps
// ErrInvalidValue.
type InvalidValueError struct {
	Index int     // index of the point in the slice given
	ID    string  // the point's identity (VIN or event id)
	Value float64 // the bad value (NaN or ±Inf)
}

func (e *InvalidValueError) Error() string {
	return fmt.Sprintf("spc: invalid value: point %d (id %q) is %v", e.Index, e.ID, e.Value)
}

func (e *InvalidValueError) Unwrap() error { return ErrInvalidValue }

func configError(format string, args ...any) error {
	return fmt.Errorf("spc: %w: "+format, append([]any{ErrConfig}, args...)...)
}

func notEnough(what string, need, have int) error {
	return &NotEnoughDataError{What: what, Need: need, Have: have}
}

func noVariation(why string) error {
	return fmt.Errorf("spc: %w: %s", ErrNoVariation, why)
}

func itoa(n int) string { return fmt.Sprint(n) }
