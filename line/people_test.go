package line_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/keiline/keiline/line"
)

// TestPeopleDefault: the default line's terminals offer a catalogue, zones
// and a reason tree whose leaves carry their path.
func TestPeopleDefault(t *testing.T) {
	p := line.Default().People
	if d, ok := p.Defect("SCR-01"); !ok || d.Label("ja") != "キズ" || d.Severity != "minor" {
		t.Errorf("defect SCR-01: %+v %v", d, ok)
	}
	if _, ok := p.Zone("door_fl"); !ok {
		t.Error("no zone door_fl")
	}
	l, ok := p.Leaf("mc_tool")
	if !ok || l.Label("en") != "Machine › Tool fault" {
		t.Errorf("leaf mc_tool: %+v %v", l, ok)
	}
	if _, ok := p.Leaf("machine"); ok {
		t.Error("an inner node of the reason tree is offered as a leaf")
	}
}

// TestPeopleValidate: a broken catalogue or reason tree is named with its
// file line and field.
func TestPeopleValidate(t *testing.T) {
	base := string(line.DefaultYAML())
	i := strings.Index(base, "\npeople:\n")
	if i < 0 {
		t.Fatal("the default line has no people: section")
	}
	head := base[:i+1]
	headLines := strings.Count(head, "\n")
	tests := []struct {
		name, people string
		line         int // line within people
		want         string
	}{
		{"repeated defect code", "people:\n  defects:\n    - {code: A, name: a}\n    - {code: A, name: b}\n  zones:\n    - {code: z, name: z}\n", 4, "people.defects.1.code: \"A\" is used twice"},
		{"bad severity", "people:\n  defects:\n    - {code: A, name: a, severity: huge}\n  zones:\n    - {code: z, name: z}\n", 3, "severity: \"huge\" is not allowed"},
		{"defects without zones", "people:\n  defects:\n    - {code: A, name: a}\n", 1, "people.zones: none configured"},
		{"reason without a name", "people:\n  reasons:\n    - code: m\n      name: M\n      reasons:\n        - {code: x}\n", 6, "people.reasons.0.reasons.0.name: missing"},
		{"reason code twice in the tree", "people:\n  reasons:\n    - code: m\n      name: M\n      reasons:\n        - {code: m, name: again}\n", 6, "used twice in the reason tree"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := line.Parse("line.yaml", []byte(head+tt.people))
			if err == nil {
				t.Fatal("no error")
			}
			want := "line.yaml:" + strconv.Itoa(headLines+tt.line) + ":"
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v, want %q at %s", err, tt.want, want)
			}
		})
	}
}
