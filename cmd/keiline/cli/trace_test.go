package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
)

// TestTraceVINShowsDecisions: trace vin prints people's decisions about
// the car with who, role, why, the signature's meaning and the event.
func TestTraceVINShowsDecisions(t *testing.T) {
	at := time.Now()
	b := schema.BirthRecord{CarStatus: schema.CarStatus{VIN: "7KLKW1NA6VU000002"}, Decisions: []schema.BirthDecision{
		{EventID: "US1.L1.T03.human.1", Seq: 41, Action: "defect", Station: "T03", At: at, User: "sato", Role: "operator", Code: "SCR-01", Zone: "door_fl", Severity: "major", Text: "scratch"},
		{EventID: "US1.L1.R01.human.2", Seq: 52, Action: "repair", Station: "R01", At: at, User: "kato", Role: "operator", Text: "polished", Cites: "US1.L1.T03.human.1"},
		{EventID: "US1.L1.Q05.human.3", Seq: 63, Action: "release", Station: "Q05", At: at, User: "ito", Role: "quality_inspector", Meaning: "I release it as conforming", Reason: "ok"},
	}}
	var out bytes.Buffer
	printBirth(&out, b)
	s := out.String()
	for _, w := range []string{"DECISIONS BY PEOPLE", "sato", "operator", "SCR-01 at door_fl (major); scratch", "US1.L1.T03.human.1",
		"kato", "polished; cites US1.L1.T03.human.1", "ito", "quality_inspector", `"I release it as conforming"`, "63"} {
		if !strings.Contains(s, w) {
			t.Errorf("trace vin output lacks %q:\n%s", w, s)
		}
	}
}
