package event_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keiline/keiline/pipeline/event"
)

func TestIdentityPolicies(t *testing.T) {
	good := mkVIN(t, 7)
	bad := "HLD00000000000001" // a body number mapped as a VIN: the check digit fails
	tests := []struct {
		name      string
		policy    event.IdentityPolicy
		vin, body string
		want      string // "" = accepted
		key       string
	}{
		{name: "vin: a valid VIN", policy: event.IdentityVIN, vin: good, key: good},
		{name: "vin: a body number mapped as a VIN", policy: event.IdentityVIN, vin: bad, want: "check digit"},
		{name: "vin: a body number to resolve", policy: event.IdentityVIN, body: "4100001", key: ""},
		{name: "vin: both", policy: event.IdentityVIN, vin: good, body: "4100001", key: good},
		{name: "vin: nothing", policy: event.IdentityVIN, want: "no car identity"},
		{name: "default policy is vin", policy: "", vin: bad, want: "check digit"},
		{name: "body-number: a body number", policy: event.IdentityBodyNumber, body: "4100001", key: "4100001"},
		{name: "body-number: a VIN only", policy: event.IdentityBodyNumber, vin: good, want: "no body number"},
		{name: "body-number: a bad VIN beside it", policy: event.IdentityBodyNumber, vin: bad, body: "4100001", want: "check digit"},
		{name: "any: a frame number", policy: event.IdentityAny, vin: "DA17V-123456", key: "DA17V-123456"},
		{name: "any: a body number", policy: event.IdentityAny, body: "4100001", key: "4100001"},
		{name: "any: a control character", policy: event.IdentityAny, vin: "DA17V\x00", want: "printable"},
		{name: "any: too long", policy: event.IdentityAny, vin: strings.Repeat("X", event.IDMax+1), want: "longer than"},
		{name: "unknown policy", policy: "frame", vin: good, want: `policy "frame" unknown`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.vin, tt.body)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Check(%q, %q) = %v, want accepted", tt.vin, tt.body, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Check(%q, %q) = %v, want an error saying %q", tt.vin, tt.body, err, tt.want)
			}
			if tt.want == "" {
				if got := tt.policy.Key(tt.vin, tt.body); got != tt.key {
					t.Fatalf("Key(%q, %q) = %q, want %q", tt.vin, tt.body, got, tt.key)
				}
			}
		})
	}
	if err := event.IdentityVIN.Check("", ""); !errors.Is(err, event.ErrNoIdentity) {
		t.Fatalf("no identity: %v, want ErrNoIdentity", err)
	}
	for _, s := range []string{"", "VIN", "Body-Number", "any"} {
		if _, err := event.ParseIdentityPolicy(s); err != nil {
			t.Errorf("ParseIdentityPolicy(%q) = %v", s, err)
		}
	}
	if _, err := event.ParseIdentityPolicy("frame"); err == nil || !strings.Contains(err.Error(), "allowed: vin, body-number, any") {
		t.Errorf("ParseIdentityPolicy(frame) = %v, want the allowed values", err)
	}
}
