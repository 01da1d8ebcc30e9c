package schema_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/spc"
)

func fp(v float64) *float64 { return &v }
func bp(v bool) *bool       { return &v }

// spcCar records one car's cycle at station with its joints and tests,
// through the record's write path.
type spcCar struct {
	vin, model, variant, station string
	at                           time.Time
	joints                       []event.Joint
	tests                        []event.Test
}

func recordCars(t *testing.T, s *schema.Store, cars []spcCar) []string {
	t.Helper()
	ids := make([]string, len(cars))
	commit(t, s, func(tx *schema.Tx) error {
		var evs []schema.EventRow
		var vs []schema.Vehicle
		var visits []schema.Visit
		for i, c := range cars {
			ids[i] = fmt.Sprintf("US1.L1.%s.cycle.%d", c.station, i+1)
			evs = append(evs, schema.EventRow{ID: ids[i], Kind: "cycle", Plant: "US1", Line: "L1", Station: c.station, VIN: c.vin,
				OccurredAt: c.at, RecordedAt: c.at, Payload: []byte(`{}`)})
			vs = append(vs, schema.Vehicle{VIN: c.vin, Model: c.model, Variant: c.variant, Colour: "white", FirstSeenAt: c.at, LastSeenAt: c.at, LastStation: c.station})
			visits = append(visits, schema.Visit{EventID: ids[i], VIN: c.vin, Station: c.station, Counter: int64(i + 1), Result: "OK",
				FinishedAt: c.at, Joints: c.joints, Tests: c.tests})
		}
		if _, err := tx.AppendEvents(t.Context(), evs); err != nil {
			return err
		}
		for _, v := range vs { // one car may come twice
			if err := tx.Apply(t.Context(), &schema.Changes{Vehicles: []schema.Vehicle{v}}); err != nil {
				return err
			}
		}
		return tx.Apply(t.Context(), &schema.Changes{Visits: visits})
	})
	return ids
}

func vinN(n int) string { return fmt.Sprintf("7KLKW1TB5VU%06d", n) }

func TestCharacteristicsListEveryJointAndTestWithTheRecordsLimits(t *testing.T) {
	s := open(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var cars []spcCar
	for i := range 6 {
		model := "KV"
		low, high := 0.5, 1.5
		if i%2 == 1 {
			model, low, high = "KW", 0.8, 1.2 // another model, other limits
		}
		torque := fp(108 + float64(i))
		if i == 3 {
			torque = nil // the PLC could not give it
		}
		cars = append(cars, spcCar{vin: vinN(i + 1), model: model, variant: "2WD", station: "C04", at: base.Add(time.Duration(i) * time.Minute),
			joints: []event.Joint{{Joint: "lug_fl_1", Tool: "NR-1", TorqueNm: torque, AngleDeg: fp(30), OK: bp(true)}}})
		cars = append(cars, spcCar{vin: vinN(i + 1), model: model, variant: "2WD", station: "Q01", at: base.Add(time.Duration(i)*time.Minute + 30*time.Second),
			tests: []event.Test{{Name: "toe_front", Unit: "deg", Value: fp(1), Low: fp(low), High: fp(high), OK: bp(true)}}})
	}
	recordCars(t, s, cars)

	got, err := s.Characteristics(t.Context(), schema.CharacteristicQuery{From: base.Add(-time.Minute), To: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]schema.Characteristic{}
	var order []string
	for _, c := range got {
		byKey[c.String()] = c
		order = append(order, c.String())
	}
	want := []string{"torque C04 lug_fl_1", "angle C04 lug_fl_1", "test Q01 toe_front", "test Q01 toe_front KV", "test Q01 toe_front KW"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("characteristics %v, want %v", order, want)
	}
	if c := byKey["torque C04 lug_fl_1"]; c.Values != 5 || c.Unknown != 1 || c.Unit != "Nm" || !c.First.Equal(base) || !c.Last.Equal(base.Add(5*time.Minute)) {
		t.Errorf("torque: %+v; want 5 known, 1 unknown, from the first to the last car", c)
	}
	if c := byKey["angle C04 lug_fl_1"]; c.Values != 6 || c.Unknown != 0 {
		t.Errorf("angle: %+v; want 6 known", c)
	}
	if c := byKey["test Q01 toe_front"]; !c.Spec.Vary || c.Spec.Low != nil || c.Values != 6 {
		t.Errorf("test across models: %+v; want limits that vary", c)
	}
	if c := byKey["test Q01 toe_front KW"]; c.Spec.Vary || c.Spec.Low == nil || *c.Spec.Low != 0.8 || *c.Spec.High != 1.2 || c.Values != 3 {
		t.Errorf("test of KW: %+v; want its own limits 0.8..1.2 over 3 values", c)
	}

	t.Run("a window with nothing", func(t *testing.T) {
		got, err := s.Characteristics(t.Context(), schema.CharacteristicQuery{From: base.Add(-48 * time.Hour), To: base.Add(-24 * time.Hour)})
		if err != nil || len(got) != 0 {
			t.Fatalf("got %v, %v; want none", got, err)
		}
	})
	t.Run("a bad window", func(t *testing.T) {
		if _, err := s.Characteristics(t.Context(), schema.CharacteristicQuery{From: base, To: base}); !errors.Is(err, schema.ErrBadCharacteristic) {
			t.Fatalf("err %v, want ErrBadCharacteristic", err)
		}
	})
}

func TestSeriesIsInTimeOrderWithEachPointsIdentityAndLeavesUnknownsOut(t *testing.T) {
	s := open(t)
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	// Recorded out of time order; one value unknown; two models.
	mins := []int{5, 1, 4, 2, 3, 0}
	var cars []spcCar
	for _, m := range mins {
		model := "KV"
		if m%2 == 1 {
			model = "KW"
		}
		var torque *float64
		if m != 2 {
			torque = fp(100 + float64(m))
		}
		cars = append(cars, spcCar{vin: vinN(m + 1), model: model, variant: "2WD", station: "C04", at: base.Add(time.Duration(m) * time.Minute),
			joints: []event.Joint{
				{Joint: "lug_fl_1", Tool: "NR-1", TorqueNm: torque, AngleDeg: fp(float64(20 + m)), OK: bp(true)},
				{Joint: "lug_fl_2", Tool: "NR-1", TorqueNm: fp(999), AngleDeg: fp(999), OK: bp(true)}, // another characteristic
			}})
	}
	ids := recordCars(t, s, cars)
	idOf := map[string]string{}
	for i, c := range cars {
		idOf[c.vin] = ids[i]
	}
	key := schema.CharKey{Kind: schema.KindTorque, Station: "C04", Name: "lug_fl_1"}
	q := schema.SeriesQuery{Key: key, From: base, To: base.Add(time.Hour)}
	got, err := s.Series(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if got.Unknown != 1 || len(got.Points) != 5 || len(got.EventIDs) != 5 {
		t.Fatalf("series: %d points, %d unknown; want 5 and 1", len(got.Points), got.Unknown)
	}
	for i, m := range []int{0, 1, 3, 4, 5} {
		p := got.Points[i]
		if p.Value != 100+float64(m) || p.ID != vinN(m+1) || !p.Time.Equal(base.Add(time.Duration(m)*time.Minute)) || got.EventIDs[i] != idOf[p.ID] {
			t.Errorf("point %d = %+v (event %s); want car %d's torque %v at minute %d (event %s)", i, p, got.EventIDs[i], m+1, 100+float64(m), m, idOf[vinN(m+1)])
		}
	}

	t.Run("angle", func(t *testing.T) {
		q := q
		q.Key.Kind = schema.KindAngle
		got, err := s.Series(t.Context(), q)
		if err != nil || len(got.Points) != 6 || got.Points[5].Value != 25 {
			t.Fatalf("angle series %+v, %v", got, err)
		}
	})
	t.Run("the newest values only", func(t *testing.T) {
		q := q
		q.Last = 2
		got, err := s.Series(t.Context(), q)
		if err != nil || len(got.Points) != 2 || got.Points[0].Value != 104 || got.Points[1].Value != 105 {
			t.Fatalf("last 2: %+v, %v; want 104 then 105", got.Points, err)
		}
	})
	t.Run("one model", func(t *testing.T) {
		q := q
		q.Key.Model = "KW"
		got, err := s.Series(t.Context(), q)
		if err != nil || len(got.Points) != 3 || got.Points[0].Value != 101 || got.Points[2].Value != 105 {
			t.Fatalf("KW: %+v, %v; want minutes 1, 3, 5", got.Points, err)
		}
	})
	t.Run("bad keys", func(t *testing.T) {
		for _, k := range []schema.CharKey{{Kind: "speed", Station: "C04", Name: "x"}, {Kind: schema.KindTest, Station: "", Name: "x"},
			{Kind: schema.KindTest, Station: "Q01", Name: "x", Variant: "4WD"}} {
			if _, err := s.Series(t.Context(), schema.SeriesQuery{Key: k, From: base, To: base.Add(time.Hour)}); !errors.Is(err, schema.ErrBadCharacteristic) {
				t.Errorf("%+v: err %v, want ErrBadCharacteristic", k, err)
			}
		}
	})
}

func TestCharPathRoundTrips(t *testing.T) {
	for _, k := range []schema.CharKey{
		{Kind: schema.KindTorque, Station: "C04", Name: "lug_fl_1"},
		{Kind: schema.KindTest, Station: "Q01", Name: "toe front/left %", Model: "KV", Variant: "4WD"},
	} {
		got, err := schema.ParseCharPath(k.Path())
		if err != nil || got != k {
			t.Errorf("ParseCharPath(%q) = %+v, %v; want %+v", k.Path(), got, err, k)
		}
	}
	for _, p := range []string{"", "torque/C04", "speed/C04/x", "torque/C04/x/KV/4WD/more", "test/Q01/%zz"} {
		if _, err := schema.ParseCharPath(p); !errors.Is(err, schema.ErrBadCharacteristic) {
			t.Errorf("ParseCharPath(%q): err %v, want ErrBadCharacteristic", p, err)
		}
	}
}

func testLimits(t *testing.T) spc.Limits {
	t.Helper()
	var pts []spc.Point
	for i, v := range []float64{10, 11, 9, 10.5, 9.5, 10, 10.2, 9.8} {
		pts = append(pts, spc.Point{Value: v, ID: vinN(i + 1)})
	}
	l, err := spc.ComputeLimits(pts, spc.ChartConfig{Method: spc.MethodIMR, N: 1})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestFrozenLimitsAreVersionedAppendOnlyAndLeastPrivileged(t *testing.T) {
	owner, web, url := openUsers(t)
	auditor, err := schema.OpenAs(t.Context(), url, schema.RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auditor.Close)
	writer, err := schema.OpenAs(t.Context(), url, schema.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(writer.Close)

	now := time.Now().Truncate(time.Microsecond)
	key := schema.CharKey{Kind: schema.KindTorque, Station: "C04", Name: "lug_fl_1"}
	f := schema.FrozenLimits{Key: key, Limits: testLimits(t), Rules: []spc.Rule{spc.Nelson1, spc.Nelson2},
		BaselineFrom: now.Add(-24 * time.Hour), BaselineTo: now, FrozenBy: "qe.tanaka", SignedIn: true, FrozenAt: now, Reason: "first baseline"}
	if _, err := auditor.LatestLimits(t.Context(), key); !errors.Is(err, schema.ErrNotFound) {
		t.Fatalf("before any freeze: %v, want ErrNotFound", err)
	}
	v1, err := web.FreezeLimits(t.Context(), f, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != 1 || v1.ID == 0 {
		t.Fatalf("first freeze: version %d id %d", v1.Version, v1.ID)
	}
	f2 := f
	f2.Limits.Location.Centre += 0.1
	f2.Limits.Location.UCL += 0.1
	f2.Limits.Location.LCL += 0.1
	f2.Reason, f2.FrozenAt = "after the tool change", now.Add(time.Minute)
	if _, err := web.FreezeLimits(t.Context(), f2, 0); !errors.Is(err, schema.ErrLimitsChanged) {
		t.Fatalf("a freeze replacing version 0 after version 1: %v, want ErrLimitsChanged", err)
	}
	v2, err := web.FreezeLimits(t.Context(), f2, 1)
	if err != nil || v2.Version != 2 {
		t.Fatalf("second freeze: %+v, %v", v2, err)
	}

	latest, err := auditor.LatestLimits(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if latest.Version != 2 || latest.Limits != f2.Limits || latest.FrozenBy != "qe.tanaka" || !latest.SignedIn || !latest.FrozenAt.Equal(f2.FrozenAt) ||
		!slices.Equal(latest.Rules, f.Rules) || !latest.BaselineTo.Equal(now) || latest.Reason != "after the tool change" {
		t.Errorf("latest = %+v\nwant version 2 of %+v", latest, f2)
	}
	hist, err := auditor.LimitsHistory(t.Context(), key)
	if err != nil || len(hist) != 2 || hist[0].Version != 2 || hist[1].Limits != f.Limits {
		t.Fatalf("history %+v, %v; want both versions, newest first, the first unchanged", hist, err)
	}
	all, err := auditor.AllLatestLimits(t.Context())
	if err != nil || len(all) != 1 || all[key].Version != 2 {
		t.Fatalf("all latest %+v, %v", all, err)
	}

	t.Run("nothing is edited, not even by the owner", func(t *testing.T) {
		for _, sql := range []string{`UPDATE spc_limits SET frozen_by = 'someone else'`, `DELETE FROM spc_limits`, `TRUNCATE spc_limits`} {
			if _, err := owner.Pool().Exec(t.Context(), sql); !isCode(err, "42501") {
				t.Errorf("owner %s: %v, want insufficient_privilege", sql, err)
			}
			if _, err := web.Pool().Exec(t.Context(), sql); !isCode(err, "42501") {
				t.Errorf("web %s: %v, want insufficient_privilege", sql, err)
			}
		}
	})
	t.Run("the auditor and the writer read only", func(t *testing.T) {
		if _, err := auditor.FreezeLimits(t.Context(), f2, 2); err == nil {
			t.Error("the auditor froze limits")
		}
		// The tracker (the writer) checks each value against the limits
		// (migration 00015) but never freezes any.
		if _, err := writer.LatestLimits(t.Context(), key); err != nil {
			t.Errorf("writer read: %v", err)
		}
		if _, err := writer.FreezeLimits(t.Context(), f2, 2); !isCode(err, "42501") {
			t.Errorf("writer froze limits: %v, want insufficient_privilege", err)
		}
	})
	t.Run("bad limits are refused with the field", func(t *testing.T) {
		bad := f2
		bad.FrozenBy = " "
		if _, err := web.FreezeLimits(t.Context(), bad, 2); !errors.Is(err, schema.ErrBadCharacteristic) {
			t.Errorf("no name: %v", err)
		}
		bad = f2
		bad.Rules = []spc.Rule{"nelson9"}
		if _, err := web.FreezeLimits(t.Context(), bad, 2); !errors.Is(err, spc.ErrConfig) {
			t.Errorf("unknown rule: %v", err)
		}
	})
}

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
