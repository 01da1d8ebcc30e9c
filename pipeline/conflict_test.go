package pipeline_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// TestTrackerRecordsAConflict: a message under an id the record holds with
// other content (a PLC whose counter restarted without a new epoch) is
// never taken for a redelivery. The tracker keeps it as a conflict event
// in the chain, raises the station's alarm (live and in station_status),
// derives nothing from it and lists it in the audit; the same conflicting
// message redelivered is one conflict, and a true redelivery stays a
// duplicate.
func TestTrackerRecordsAConflict(t *testing.T) {
	e := newEnv(t)
	v := mkVIN(t, 1)
	w01 := cycleEvent(t, "W01", v, 1, t0, "OK")
	e.publish(w01)
	// Another car's cycle under the same id: the counter started again at 1.
	other := cycleEvent(t, "W01", mkVIN(t, 2), 1, t0.Add(time.Hour), "OK")
	if other.ID != w01.ID {
		t.Fatalf("ids %s and %s, want the same", other.ID, w01.ID)
	}
	conflicting, err := json.Marshal(other)
	if err != nil {
		t.Fatal(err)
	}
	same, err := json.Marshal(w01)
	if err != nil {
		t.Fatal(err)
	}
	subject := event.Subject("US1", "L1", "W01", "cycle")
	e.publishRaw(subject, conflicting)
	e.publishRaw(subject, conflicting) // redelivered
	e.publishRaw(subject, same)        // a true redelivery
	tr, stop := e.run()
	defer stop()
	drain(t, tr)

	if n := count(t, e.store, `SELECT count(*) FROM event_log`); n != 2 {
		t.Errorf("event_log has %d rows, want the cycle and one conflict", n)
	}
	// Filed under the car the conflicting message names: its cycle is the
	// one the record could not derive.
	if n := count(t, e.store, `SELECT count(*) FROM event_log WHERE kind = 'conflict' AND station = 'W01' AND vin = $1`, other.VIN); n != 1 {
		t.Errorf("%d conflict events for W01 and %s, want 1", n, other.VIN)
	}
	if n := count(t, e.store, `SELECT count(*) FROM station_visits`); n != 1 {
		t.Errorf("%d station visits, want only the first car's", n)
	}
	if st := tr.Stats(); st.Conflicts != 1 || st.Duplicates != 2 || st.Recorded != 1 {
		t.Errorf("stats %+v, want 1 recorded, 1 conflict, 2 duplicates", st)
	}
	if n := count(t, e.store, `SELECT count(*) FROM alarms WHERE station = 'W01' AND code = $1 AND active`, event.AlarmConflict); n != 1 {
		t.Errorf("%d conflict alarms on W01, want 1", n)
	}
	ss, err := e.store.StationStatuses(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var w01Alarm string
	for _, s := range ss {
		if s.Station == "W01" {
			w01Alarm = s.Alarm.Code
		}
	}
	if w01Alarm != event.AlarmConflict {
		t.Errorf("W01's station status alarm %q, want %q", w01Alarm, event.AlarmConflict)
	}
	for _, l := range tr.Live() {
		if l.Station == "W01" && (l.AlarmCode != event.AlarmConflict || !strings.Contains(l.AlarmText, w01.ID)) {
			t.Errorf("live W01 %+v, want the conflict alarm naming %s", l, w01.ID)
		}
	}
	r, err := e.store.Audit(t.Context(), schema.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 0 {
		t.Errorf("audit problems %v, want none: a conflict is kept, not an alteration", r.Problems)
	}
	if len(r.Conflicts) != 1 || r.Conflicts[0].EventID != w01.ID || r.Conflicts[0].Station != "W01" ||
		!strings.Contains(r.Conflicts[0].Text, "vin") {
		t.Errorf("audit conflicts %+v, want one for %s naming what differs", r.Conflicts, w01.ID)
	}
	var kept []byte
	if err := e.store.Pool().QueryRow(t.Context(), `SELECT payload FROM event_log WHERE kind = 'conflict'`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	// Read as stored: a station may not publish this kind, so the wire's
	// decoder refuses it.
	var cev event.Event
	if err := json.Unmarshal(kept, &cev); err != nil {
		t.Fatal(err)
	}
	c, err := cev.Conflict()
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Payload) != string(conflicting) {
		t.Errorf("the conflict keeps %q, want the conflicting message as received", c.Payload)
	}
}
