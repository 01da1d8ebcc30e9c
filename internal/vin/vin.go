// Package vin makes and checks 17-character vehicle identification numbers
// in the North American form of 49 CFR 565: world manufacturer identifier
// (positions 1-3), vehicle descriptor (4-8), check digit (9), model year (10),
// plant code (11) and serial number (12-17).
//
// It is a leaf package: the simulator (which stamps VINs like a framing PLC)
// and the MES (which validates every VIN that comes in) both use it.
package vin

import (
	"errors"
	"fmt"
	"strings"
)

// Len is the length of a VIN.
const Len = 17

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("invalid VIN")

// transliteration maps each allowed character to its value for the check
// digit (49 CFR 565.15, table IV). I, O and Q are never allowed.
var transliteration = func() [256]int8 {
	var t [256]int8
	for i := range t {
		t[i] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	vals := map[byte]int8{
		'A': 1, 'B': 2, 'C': 3, 'D': 4, 'E': 5, 'F': 6, 'G': 7, 'H': 8,
		'J': 1, 'K': 2, 'L': 3, 'M': 4, 'N': 5, 'P': 7, 'R': 9,
		'S': 2, 'T': 3, 'U': 4, 'V': 5, 'W': 6, 'X': 7, 'Y': 8, 'Z': 9,
	}
	for c, v := range vals {
		t[c] = v
	}
	return t
}()

var weights = [Len]int{8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2}

// yearCodes are the model-year characters of position 10, starting at 2010
// (A) and repeating every 30 years.
const yearCodes = "ABCDEFGHJKLMNPRSTVWXY123456789"

// CheckDigit returns the check digit ('0'-'9' or 'X') for the 17-character
// VIN v, ignoring whatever stands in position 9. It returns an error naming
// the first character that is not allowed in a VIN.
func CheckDigit(v string) (byte, error) {
	if len(v) != Len {
		return 0, fmt.Errorf("%w %q: %d characters, want %d", ErrInvalid, v, len(v), Len)
	}
	sum := 0
	for i := 0; i < Len; i++ {
		val := transliteration[v[i]]
		if val < 0 {
			return 0, fmt.Errorf("%w %q: character %q at position %d is not allowed", ErrInvalid, v, v[i], i+1)
		}
		sum += int(val) * weights[i]
	}
	r := sum % 11
	if r == 10 {
		return 'X', nil
	}
	return byte('0' + r), nil
}

// Validate checks that v is a well-formed VIN with a correct check digit.
// Lower-case letters are not accepted: a VIN is stamped in capitals.
func Validate(v string) error {
	want, err := CheckDigit(v)
	if err != nil {
		return err
	}
	if v[8] != want {
		return fmt.Errorf("%w %q: check digit %q, want %q", ErrInvalid, v, v[8], want)
	}
	if strings.IndexByte(yearCodes, v[9]) < 0 {
		return fmt.Errorf("%w %q: model year code %q is not allowed", ErrInvalid, v, v[9])
	}
	return nil
}

// Make builds a VIN from its parts: a 3-character world manufacturer
// identifier, a 5-character vehicle descriptor, a model year (2010-2069), a
// plant code character and a serial number (0-999999). It computes the check
// digit and validates the result.
func Make(wmi, descriptor string, modelYear int, plant byte, serial int) (string, error) {
	if len(wmi) != 3 {
		return "", fmt.Errorf("%w: world manufacturer identifier %q must have 3 characters", ErrInvalid, wmi)
	}
	if len(descriptor) != 5 {
		return "", fmt.Errorf("%w: vehicle descriptor %q must have 5 characters", ErrInvalid, descriptor)
	}
	if modelYear < 2010 || modelYear > 2069 {
		return "", fmt.Errorf("%w: model year %d outside 2010-2069", ErrInvalid, modelYear)
	}
	if serial < 0 || serial > 999999 {
		return "", fmt.Errorf("%w: serial %d outside 0-999999", ErrInvalid, serial)
	}
	v := fmt.Sprintf("%s%s0%c%c%06d", wmi, descriptor, yearCodes[(modelYear-2010)%30], plant, serial)
	d, err := CheckDigit(v)
	if err != nil {
		return "", err
	}
	v = v[:8] + string(d) + v[9:]
	return v, Validate(v)
}
