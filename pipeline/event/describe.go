package event

import (
	"fmt"
	"strconv"
	"strings"
)

// IsOK reports whether a joint's or test's verdict is known and OK.
func IsOK(ok *bool) bool { return ok != nil && *ok }

// IsNOK reports whether a verdict is known and NOK.
func IsNOK(ok *bool) bool { return ok != nil && !*ok }

// Num formats a value with its unit for people, "unknown" when nil.
func Num(v *float64, format, unit string) string {
	if v == nil {
		return "unknown"
	}
	s := fmt.Sprintf(format, *v)
	if unit != "" {
		s += " " + unit
	}
	return s
}

// Describe says what the joint measured: "tool C04-NR1 108.25 Nm 44.5°",
// with "unknown" for a value that could not be read.
func (j Joint) Describe() string {
	angle := "angle unknown"
	if j.AngleDeg != nil {
		angle = strconv.FormatFloat(*j.AngleDeg, 'f', 1, 64) + "°"
	}
	torque := "torque unknown"
	if j.TorqueNm != nil {
		torque = strconv.FormatFloat(*j.TorqueNm, 'f', 2, 64) + " Nm"
	}
	return "tool " + j.Tool + " " + torque + " " + angle
}

// Describe says what the test measured against its limits: "3.1 mm
// within 2.5..3.5", "outside", or with unknown parts named.
func (x Test) Describe() string {
	g := func(v *float64) string {
		if v == nil {
			return "?"
		}
		return strconv.FormatFloat(*v, 'g', -1, 64)
	}
	where := "within"
	switch {
	case x.OK == nil:
		where = "verdict unknown, limits"
	case !*x.OK:
		where = "outside"
	}
	value := "value unknown"
	if x.Value != nil {
		value = strings.TrimSpace(g(x.Value) + " " + x.Unit)
	}
	return value + " " + where + " " + g(x.Low) + ".." + g(x.High)
}

// NOKReason is the reason of the hold a NOK cycle at station puts on its
// car: each NOK joint and test with what it measured.
func NOKReason(station string, c *Cycle) string {
	var parts []string
	for _, j := range c.Joints {
		if IsNOK(j.OK) {
			parts = append(parts, "joint "+j.Joint+" "+strings.TrimPrefix(j.Describe(), "tool "+j.Tool+" "))
		}
	}
	for _, x := range c.Tests {
		if IsNOK(x.OK) {
			parts = append(parts, "test "+x.Name+" "+x.Describe())
		}
	}
	if len(parts) == 0 {
		return "NOK at " + station
	}
	return "NOK at " + station + ": " + strings.Join(parts, "; ")
}
