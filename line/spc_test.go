package line

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/spc"
)

// withSections is a valid line of two stations followed by extra YAML.
func withSections(extra string) string {
	return `version: 1
plant: US1
line: L1
node_pattern: "ns=1;s={station}.{tag}"
stations:
  - {id: C04, endpoint: "opc.tcp://127.0.0.1:4840", joints: 1, nodes: {Result.BodyNo: {absent: true}}}
  - {id: Q01, endpoint: "opc.tcp://127.0.0.1:4840", tests: 1, nodes: {Result.BodyNo: {absent: true}}}
` + extra
}

func TestSPCAndShiftSectionsParse(t *testing.T) {
	cfg, err := Parse("line.yaml", []byte(withSections(`spc:
  rules: [we]
  characteristics:
    - {kind: torque, station: C04, name: lug_fl_1, lsl: 97.2, usl: 118.8, target: 108, class_a: true, on_break: hold}
    - {kind: torque, station: C04, name: lug_fl_1, model: KV, subgroup: 5, rules: [nelson1, nelson2]}
    - {kind: test, station: Q01, name: toe_front, chart: xbar-s, subgroup: 4}
shifts:
  length: 8h
  calendar: [{name: day, start: "06:00", planned_start: "06:10"}, {name: late, start: "14:00"}]
  breaks: [{name: lunch, at: "11:30", length: 45m}, {at: "09:00", length: 10m}]
  ideal_cycle: 55s
  ideal_cycles: {C04: 50s}
`)))
	if err != nil {
		t.Fatal(err)
	}
	all := cfg.SPCFor("torque", "C04", "lug_fl_1", "", "")
	if *all.USL != 118.8 || !all.ClassA || all.CpkMin() != CpkMinClassA || all.OnBreak != OnBreakHold || !slices.Equal(all.RuleSet(), spc.WesternElectricRules) {
		t.Errorf("every car's lug_fl_1: %+v", all)
	}
	if c := all.ChartConfig(); c.Method != spc.MethodIMR || c.N != 1 {
		t.Errorf("default chart %+v, want i-mr of 1", c)
	}
	kv := cfg.SPCFor("torque", "C04", "lug_fl_1", "KV", "2WD") // the model's entry, for its variant
	if c := kv.ChartConfig(); c.Method != spc.MethodXbarR || c.N != 5 || kv.Variant != "2WD" || !slices.Equal(kv.RuleSet(), []spc.Rule{spc.Nelson1, spc.Nelson2}) {
		t.Errorf("KV 2WD: %+v (chart %+v)", kv, kv.ChartConfig())
	}
	other := cfg.SPCFor("angle", "C04", "lug_fl_1", "", "") // not configured: the line's defaults
	if other.LSL != nil || other.OnBreak != OnBreakAlarm || !slices.Equal(other.RuleSet(), spc.WesternElectricRules) {
		t.Errorf("unconfigured: %+v", other)
	}
	if c := cfg.SPCFor("test", "Q01", "toe_front", "", "").ChartConfig(); c.Method != spc.MethodXbarS || c.N != 4 {
		t.Errorf("test chart %+v", c)
	}

	s := &cfg.Shifts
	if s.IdealCycleOf("C04", time.Minute) != 50*time.Second || s.IdealCycleOf("Q01", time.Minute) != 55*time.Second {
		t.Errorf("ideal cycles C04 %v Q01 %v", s.IdealCycleOf("C04", time.Minute), s.IdealCycleOf("Q01", time.Minute))
	}
	var none *Shifts
	if none.IdealCycleOf("C04", time.Minute) != time.Minute || none.ShiftLength() != ShiftLengthDefault || none.Unplanned(time.Now(), time.Now().Add(time.Hour)) != nil {
		t.Error("no calendar: want the takt, the default length and no breaks")
	}
	if s.FirstStart() != "06:00" {
		t.Errorf("first start %q", s.FirstStart())
	}
}

func TestShiftCalendarBreaksAndPlannedStart(t *testing.T) {
	now := time.Now()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC) // UTC: no daylight saving day moves the hours
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	s := &Shifts{
		Calendar:     []Shift{{Name: "day", Start: "06:00", PlannedStart: "06:10"}, {Name: "night", Start: "22:00", PlannedStart: "00:30"}},
		Breaks:       []Break{{Name: "lunch", At: "11:30", Length: 45 * time.Minute}, {Name: "break", At: "09:00", Length: 10 * time.Minute}, {Name: "night break", At: "02:00", Length: 15 * time.Minute}},
		PlannedStops: []PlannedStop{{Reason: "PM", From: at(12, 0), To: at(13, 0)}},
	}
	got := s.Unplanned(at(6, 0), at(14, 0))
	want := []Span{{at(9, 0), at(9, 10), "break"}, {at(11, 30), at(13, 0), "lunch, PM"}}
	if !slices.Equal(got, want) {
		t.Errorf("Unplanned(day shift) = %v\nwant %v", got, want)
	}
	// The night shift crosses midnight: its break is on the next day.
	if got := s.Unplanned(at(22, 0), at(30, 0)); len(got) != 1 || !got[0].From.Equal(at(26, 0)) {
		t.Errorf("Unplanned(night) = %v, want the 02:00 break of the next day", got)
	}
	// Clipped to the window.
	if got := s.Unplanned(at(9, 5), at(11, 40)); len(got) != 2 || !got[0].From.Equal(at(9, 5)) || !got[1].To.Equal(at(11, 40)) {
		t.Errorf("clipped: %v", got)
	}
	if p, ok := s.PlannedStart(at(6, 0)); !ok || !p.Equal(at(6, 10)) {
		t.Errorf("planned start of the day shift = %v, %v", p, ok)
	}
	if p, ok := s.PlannedStart(at(22, 0)); !ok || !p.Equal(at(24, 30)) {
		t.Errorf("planned start of the night shift = %v, %v; want 00:30 the next day", p, ok)
	}
	if _, ok := s.PlannedStart(at(14, 0)); ok {
		t.Error("a shift the calendar gives no planned start has one")
	}
}

func TestSPCAndShiftProblemsNameTheirLine(t *testing.T) {
	_, err := Parse("line.yaml", []byte(withSections(`spc:
  rules: [nelson9]
  characteristics:
    - {kind: speed, station: X99, name: ""}
    - {kind: torque, station: C04, name: j, lsl: 10, usl: 5, subgroup: 30, on_break: explode}
    - {kind: torque, station: C04, name: j2, chart: i-mr, subgroup: 3, colour: red}
shifts:
  calendar: [{start: "25:00"}, {start: "06:00", planned_start: "15:00"}]
  breaks: [{at: "09:00", length: 0s}]
  ideal_cycles: {Z01: 50s}
`)))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Parse = %v, want a *ConfigError", err)
	}
	msg := ce.Error()
	for _, want := range []string{
		`line.yaml:9: spc.rules: rule "nelson9"`,
		`line.yaml:11: spc.characteristics.0.kind: "speed" is not allowed; allowed: torque, angle, test`,
		`line.yaml:11: spc.characteristics.0.station: "X99" is not a station`,
		`line.yaml:11: spc.characteristics.0.name: required`,
		`line.yaml:12: spc.characteristics.1.usl: 5 must be above lsl 10`,
		`line.yaml:12: spc.characteristics.1.subgroup: 30 outside 1..25`,
		`line.yaml:12: spc.characteristics.1.on_break: "explode" is not allowed; allowed: alarm, andon, hold`,
		`line.yaml:13: spc.characteristics.2.chart: i-mr with subgroup 3`,
		`line.yaml:13: spc.characteristics.2.colour: unknown field`,
		`line.yaml:15: shifts.calendar.0.start: "25:00": want a time of day HH:MM`,
		`line.yaml:15: shifts.calendar.1.planned_start: 15:00 is not within the shift`,
		`line.yaml:16: shifts.breaks.0.length: 0s: want above 0`,
		`line.yaml:17: shifts.ideal_cycles.Z01: "Z01" is not a station of the line`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in\n%s", want, msg)
		}
	}
}
