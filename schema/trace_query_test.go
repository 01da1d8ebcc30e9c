package schema_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/tracetest"
)

func TestTraceBirthRecord(t *testing.T) {
	s := open(t)
	ids := tracetest.Record(t, s)

	t.Run("reworked car is released and shipped", func(t *testing.T) {
		tr, err := s.Trace(t.Context(), tracetest.VINs[1])
		if err != nil {
			t.Fatal(err)
		}
		b := tr.Birth()
		var route []string
		for _, v := range b.Visits {
			route = append(route, v.Station)
			if v.Seq == 0 || len(v.Hash) != 64 {
				t.Errorf("visit %s: chain ref seq %d hash %q", v.EventID, v.Seq, v.Hash)
			}
		}
		if got := fmt.Sprint(route); got != "[W01 C04 R01 Q05 S01]" {
			t.Errorf("route %s", got)
		}
		if b.Where != schema.WhereShipped || b.OpenHolds != 0 || !b.Released {
			t.Errorf("status %+v released %v, want shipped, no open hold, released", b.CarStatus, b.Released)
		}
		if len(b.Holds) != 1 || b.Holds[0].OpenedEventID != ids[2]["C04"] || b.Holds[0].ClosedEventID != ids[2]["R01"] {
			t.Errorf("holds %+v, want one opened by %s and closed by %s", b.Holds, ids[2]["C04"], ids[2]["R01"])
		}
		want := schema.Defect{Station: "C04", EventID: ids[2]["C04"], Kind: schema.DefectJoint, Name: "lug_fl_2",
			Detail: "tool C04-NR1 91.25 Nm 44.5°", ReworkEventID: ids[2]["R01"], ReworkStation: "R01", ReworkDetail: "tool R01-T1 107.80 Nm 40.1°"}
		if len(b.Defects) != 1 {
			t.Fatalf("defects %+v", b.Defects)
		}
		got := b.Defects[0]
		got.At = time.Time{}
		if got != want {
			t.Errorf("defect\n got %+v\nwant %+v", got, want)
		}
		if len(b.Gate) != 1 || b.Gate[0].EventID != ids[2]["Q05"] || !b.Gate[0].Released {
			t.Errorf("gate %+v", b.Gate)
		}
		if !b.Visits[2].Rework || b.Visits[1].Rework {
			t.Errorf("rework flags: R01 %v, C04 %v", b.Visits[2].Rework, b.Visits[1].Rework)
		}
	})

	t.Run("car that skipped rework is blocked at the gate", func(t *testing.T) {
		tr, err := s.Trace(t.Context(), tracetest.VINs[2])
		if err != nil {
			t.Fatal(err)
		}
		b := tr.Birth()
		if b.Where != schema.WhereOnHold || b.OpenHolds != 1 || b.Released {
			t.Errorf("status %+v released %v, want on hold, blocked", b.CarStatus, b.Released)
		}
		if len(b.Gate) != 1 || b.Gate[0].Released || b.Gate[0].OpenHolds != 1 ||
			b.Gate[0].Reason != "nok hold from C04 ("+ids[3]["C04"]+"): NOK at C04: joint lug_fl_2 91.25 Nm 44.5°" {
			t.Errorf("gate %+v", b.Gate)
		}
		if len(b.Defects) != 1 || b.Defects[0].ReworkEventID != "" {
			t.Errorf("defects %+v, want one not reworked", b.Defects)
		}
	})

	t.Run("unknown VIN", func(t *testing.T) {
		if _, err := s.Trace(t.Context(), tracetest.Unknown); !errors.Is(err, schema.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestTraceQuestions(t *testing.T) {
	s := open(t)
	ids := tracetest.Record(t, s)
	day := schema.MonthStart(tracetest.Start).AddDate(0, 0, -1)
	all := [2]time.Time{day, day.AddDate(0, 3, 0)}
	vinsOf := func(cars []schema.CarStatus) string {
		var out []string
		for _, c := range cars {
			out = append(out, c.VIN[len(c.VIN)-2:]+":"+c.Where)
		}
		return fmt.Sprint(out)
	}
	tests := []struct {
		name  string
		ask   func() ([]schema.CarStatus, int, error)
		cars  string
		rows  int
		noErr bool
	}{
		{"part serial", func() ([]schema.CarStatus, int, error) {
			a, err := s.ByPart(t.Context(), []string{"BIW-KW-000002"})
			return cars(a, err), uses(a), err
		}, "[02:shipped]", 1, true},
		{"two serials", func() ([]schema.CarStatus, int, error) {
			a, err := s.ByPart(t.Context(), []string{"BIW-KW-000001", "BIW-KW-000003", "no-such-serial"})
			return cars(a, err), uses(a), err
		}, "[01:shipped 03:on hold]", 2, true},
		{"lot", func() ([]schema.CarStatus, int, error) {
			a, err := s.ByLot(t.Context(), schema.LotQuery{Lots: []string{"TYR-LOT-00201"}})
			return cars(a, err), uses(a), err
		}, "[02:shipped 03:on hold]", 2, true},
		{"lot of another part number", func() ([]schema.CarStatus, int, error) {
			a, err := s.ByLot(t.Context(), schema.LotQuery{Lots: []string{"TYR-LOT-00201"}, PartNumber: "TYR-145R12-LT"})
			return cars(a, err), uses(a), err
		}, "[]", 0, true},
		{"lot by part number and supplier", func() ([]schema.CarStatus, int, error) {
			a, err := s.ByLot(t.Context(), schema.LotQuery{Lots: []string{"BIW-LOT-00100"}, PartNumber: "BIW-KW", Supplier: "SUP-KLN-BODY"})
			return cars(a, err), uses(a), err
		}, "[01:shipped 02:shipped 03:on hold]", 3, true},
		{"tool over the whole history", func() ([]schema.CarStatus, int, error) {
			a, err := s.ByTool(t.Context(), schema.ToolQuery{Tool: "C04-NR1", From: all[0], To: all[1]})
			return wcars(a, err), joints(a), err
		}, "[01:shipped 02:shipped 03:on hold]", 12, true},
		{"tool in a window of one car", func() ([]schema.CarStatus, int, error) {
			at := tracetest.Start.Add(4 * tracetest.Step) // car 2 at C04
			a, err := s.ByTool(t.Context(), schema.ToolQuery{Tool: "C04-NR1", From: at, To: at.Add(time.Minute)})
			return wcars(a, err), joints(a), err
		}, "[02:shipped]", 4, true},
		{"NOK joints of the tool", func() ([]schema.CarStatus, int, error) {
			a, err := s.ByTool(t.Context(), schema.ToolQuery{Tool: "C04-NR1", From: all[0], To: all[1], Result: schema.ResultNOK})
			return wcars(a, err), joints(a), err
		}, "[02:shipped 03:on hold]", 2, true},
		{"station visits", func() ([]schema.CarStatus, int, error) {
			a, err := s.ByStation(t.Context(), schema.StationQuery{Station: "C04", From: all[0], To: all[1]})
			return wcars(a, err), visitsOf(a), err
		}, "[01:shipped 02:shipped 03:on hold]", 3, true},
		{"NOK visits of the station", func() ([]schema.CarStatus, int, error) {
			a, err := s.ByStation(t.Context(), schema.StationQuery{Station: "C04", From: all[0], To: all[1], Result: schema.ResultNOK})
			return wcars(a, err), visitsOf(a), err
		}, "[02:shipped 03:on hold]", 2, true},
		{"every NOK joint J", func() ([]schema.CarStatus, int, error) {
			a, err := s.ByStation(t.Context(), schema.StationQuery{Station: "C04", From: all[0], To: all[1], Rows: schema.RowsJoints, Name: "lug_fl_2", Result: schema.ResultNOK})
			return wcars(a, err), joints(a), err
		}, "[02:shipped 03:on hold]", 2, true},
		{"OK joints J", func() ([]schema.CarStatus, int, error) {
			a, err := s.ByStation(t.Context(), schema.StationQuery{Station: "C04", From: all[0], To: all[1], Rows: schema.RowsJoints, Name: "lug_fl_2", Result: schema.ResultOK})
			return wcars(a, err), joints(a), err
		}, "[01:shipped]", 1, true},
		{"tests of the station", func() ([]schema.CarStatus, int, error) {
			a, err := s.ByStation(t.Context(), schema.StationQuery{Station: "C04", From: all[0], To: all[1], Rows: schema.RowsTests, Name: "torque_audit"})
			if a != nil {
				return a.Cars, len(a.Tests), err
			}
			return nil, 0, err
		}, "[01:shipped 02:shipped 03:on hold]", 3, true},
		{"window that ends before it starts", func() ([]schema.CarStatus, int, error) {
			_, err := s.ByTool(t.Context(), schema.ToolQuery{Tool: "C04-NR1", From: all[1], To: all[0]})
			return nil, 0, err
		}, "", 0, false},
		{"name with visits", func() ([]schema.CarStatus, int, error) {
			_, err := s.ByStation(t.Context(), schema.StationQuery{Station: "C04", From: all[0], To: all[1], Name: "lug_fl_2"})
			return nil, 0, err
		}, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, n, err := tt.ask()
			if !tt.noErr {
				if !errors.Is(err, schema.ErrBadQuestion) {
					t.Fatalf("err = %v, want ErrBadQuestion", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := vinsOf(cs); got != tt.cars || n != tt.rows {
				t.Errorf("cars %s rows %d, want %s rows %d", got, n, tt.cars, tt.rows)
			}
		})
	}
	_ = ids
}

func cars(a *schema.PartAnswer, err error) []schema.CarStatus {
	if err != nil {
		return nil
	}
	return a.Cars
}

func uses(a *schema.PartAnswer) int {
	if a == nil {
		return 0
	}
	return len(a.Uses)
}

func wcars(a *schema.WindowAnswer, err error) []schema.CarStatus {
	if err != nil {
		return nil
	}
	return a.Cars
}

func joints(a *schema.WindowAnswer) int {
	if a == nil {
		return 0
	}
	return len(a.Joints)
}

func visitsOf(a *schema.WindowAnswer) int {
	if a == nil {
		return 0
	}
	return len(a.Visits)
}

// TestPartitionsFollowTheEvents appends events far in the past and ahead:
// each gets its month's partitions, the months ahead of the newest are
// made, and a car's span widens for a late event.
func TestPartitionsFollowTheEvents(t *testing.T) {
	s := open(t)
	// Twenty-five years back and five ahead of this month, on the 3rd.
	old := monthsAgo(time.Now(), 25*12).AddDate(0, 0, 2).Add(4*time.Hour + 5*time.Minute + 6*time.Second)
	ahead := monthsAgo(time.Now(), -5*12)
	oldMonth, lastMonth := old.Format("2006-01"), ahead.AddDate(0, 3, 0).Format("2006-01")
	late := events("late")
	late[0].OccurredAt = old
	appendEvents(t, s, late)
	future := events("future")
	future[0].OccurredAt = ahead
	appendEvents(t, s, future)
	var months []string
	rows, err := s.Pool().Query(t.Context(), `SELECT to_char(month, 'YYYY-MM') FROM trace_partitions WHERE parent = 'joints' ORDER BY month`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var m string
		rows.Scan(&m)
		months = append(months, m)
	}
	if len(months) == 0 || months[0] != oldMonth || months[len(months)-1] != lastMonth {
		t.Errorf("joints partitions %v: want %s first and %s (three months ahead of %s) last", months, oldMonth, lastMonth, ahead.Format("2006-01"))
	}
	var n int
	if err := s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM event_log_`+tracetest.MonthSuffix(old)).Scan(&n); err != nil || n != 1 {
		t.Errorf("event_log_%s holds %d rows (%v), want the late event", tracetest.MonthSuffix(old), n, err)
	}
	if _, problem, err := s.VerifyChain(t.Context()); err != nil || problem != nil {
		t.Errorf("chain across partitions: %v %v", problem, err)
	}
}
