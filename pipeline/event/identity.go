package event

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/keiline/keiline/internal/vin"
)

// IdentityPolicy is how a line identifies its cars: the rule every cycle's
// VIN and body number must meet, checked by the agent before it
// acknowledges a cycle and by the tracker when it records it.
type IdentityPolicy string

// Identity policies.
const (
	// IdentityVIN (the default): a car is its 49 CFR 565 VIN, check digit
	// included. A station may report only a body number instead; the
	// tracker resolves it to the VIN a station reporting both gave.
	IdentityVIN IdentityPolicy = "vin"
	// IdentityBodyNumber: the plant tracks cars by body number; every
	// cycle carries one (a VIN, where a station gives one too, must be a
	// valid VIN).
	IdentityBodyNumber IdentityPolicy = "body-number"
	// IdentityAny: any non-empty id (a Japanese frame number, a plant's
	// own tracking number) in the VIN or the body number.
	IdentityAny IdentityPolicy = "any"
)

// IdentityPolicies are the allowed policies.
var IdentityPolicies = []IdentityPolicy{IdentityVIN, IdentityBodyNumber, IdentityAny}

// IDMax is the longest car id or body number accepted.
const IDMax = 64

// ErrNoIdentity is wrapped when a cycle carries neither a VIN nor a body
// number.
var ErrNoIdentity = errors.New("no car identity")

// Check reports whether a cycle with this VIN and body number (either may
// be empty) identifies its car under p. The empty policy is IdentityVIN.
func (p IdentityPolicy) Check(v, body string) error {
	if v == "" && body == "" {
		return fmt.Errorf("%w: neither a VIN nor a body number", ErrNoIdentity)
	}
	if err := checkID("body number", body); err != nil {
		return err
	}
	switch p {
	case IdentityVIN, "":
		if v != "" {
			return vin.Validate(v)
		}
		return nil // a body number the tracker resolves to the VIN
	case IdentityBodyNumber:
		if body == "" {
			return fmt.Errorf("%w: no body number (policy %s)", ErrNoIdentity, p)
		}
		if v != "" {
			return vin.Validate(v)
		}
		return nil
	case IdentityAny:
		return checkID("car id", v)
	}
	return fmt.Errorf("identity policy %q unknown (%s)", p, joinPolicies())
}

// Key returns the id the record files the cycle's car under: the VIN, or
// under IdentityBodyNumber the body number; under IdentityVIN a cycle with
// only a body number has no key until the tracker resolves it ("").
func (p IdentityPolicy) Key(v, body string) string {
	switch p {
	case IdentityBodyNumber:
		return body
	case IdentityAny:
		if v != "" {
			return v
		}
		return body
	}
	return v
}

// ParseIdentityPolicy returns the policy named s ("" is IdentityVIN).
func ParseIdentityPolicy(s string) (IdentityPolicy, error) {
	if s == "" {
		return IdentityVIN, nil
	}
	for _, p := range IdentityPolicies {
		if strings.EqualFold(string(p), s) {
			return p, nil
		}
	}
	return "", fmt.Errorf("identity policy %q unknown; allowed: %s", s, joinPolicies())
}

func joinPolicies() string {
	s := make([]string, len(IdentityPolicies))
	for i, p := range IdentityPolicies {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

// checkID checks an id: printable, no spaces, at most IDMax bytes; "" is
// fine (absent).
func checkID(what, s string) error {
	if len(s) > IDMax {
		return fmt.Errorf("%s %q: longer than %d bytes", what, s[:IDMax]+"…", IDMax)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%s %q: only printable characters without spaces", what, s)
		}
	}
	return nil
}
