package event_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
)

// TestRetentionEvent: keiline's record of a removed month carries the
// cumulative gaps, is named by its month, and no station may publish one.
func TestRetentionEvent(t *testing.T) {
	now := time.Now()
	month := time.Date(now.Year()-2, now.Month(), 1, 0, 0, 0, 0, time.UTC)
	gaps := []event.RetentionGap{{FirstSeq: 1, LastSeq: 9, LastHash: []byte{1, 2, 3}, Rows: 9, Partition: "event_log_x"}}
	ev, err := event.NewRetention("US1", "L1", month, 12, gaps, now)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != event.RetentionID("US1", "L1", month, 12) || !strings.HasSuffix(ev.ID, ".retention."+month.Format("2006-01")+".12") ||
		!event.IsRetentionID(ev.ID) || ev.Station != event.RetentionStation {
		t.Errorf("retention event %s at %s", ev.ID, ev.Station)
	}
	r, err := ev.Retention()
	if err != nil || !r.Month.Equal(month) || len(r.Gaps) != 1 || r.Gaps[0].LastSeq != 9 || !bytes.Equal(r.Gaps[0].LastHash, []byte{1, 2, 3}) {
		t.Errorf("retention data %+v, %v", r, err)
	}
	if _, err := event.DecodeFor(body(t, ev), event.IdentityAny); err == nil || !strings.Contains(err.Error(), "keiline's own") {
		t.Errorf("a published retention event: %v, want refused", err)
	}
}
