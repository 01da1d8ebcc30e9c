package vin

import (
	"errors"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		vin  string
		ok   bool
	}{
		{name: "known good (NHTSA example)", vin: "1M8GDM9AXKP042788", ok: true},
		{name: "known good 2", vin: "11111111111111111", ok: true},
		{name: "wrong check digit", vin: "1M8GDM9A1KP042788"},
		{name: "too short", vin: "1M8GDM9AXKP04278"},
		{name: "letter O", vin: "1M8GDM9AXKP0427O8"},
		{name: "lower case", vin: "1m8gdm9axkp042788"},
		{name: "empty", vin: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.vin)
			if tt.ok && err != nil {
				t.Fatalf("Validate(%q) = %v, want nil", tt.vin, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate(%q) = %v, want ErrInvalid", tt.vin, err)
			}
		})
	}
}

func TestMakeRoundTrip(t *testing.T) {
	v, err := Make("7KL", "KW1NA", 2027, 'U', 123)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != Len || v[9] != 'V' || v[10] != 'U' || v[11:] != "000123" {
		t.Fatalf("Make = %q", v)
	}
	if err := Validate(v); err != nil {
		t.Fatal(err)
	}
}

func FuzzValidate(f *testing.F) {
	f.Add("1M8GDM9AXKP042788")
	f.Add("7KLKW1NA0TU000123")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		err := Validate(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if len(s) != Len {
			t.Fatalf("accepted %q of length %d", s, len(s))
		}
		d, _ := CheckDigit(s)
		if s[8] != d {
			t.Fatalf("accepted %q with wrong check digit", s)
		}
	})
}
