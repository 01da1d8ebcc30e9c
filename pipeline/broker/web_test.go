package broker_test

import (
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
)

func humanEvent(t *testing.T, line, station string) *event.Event {
	t.Helper()
	ev, err := event.NewHuman("US1", line, station, "", event.Human{Action: event.ActionAndonPull, UserID: 1, User: "sato", Role: "operator",
		Reason: "missing clip"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestWebPublishesOnlyPeoplesDecisions: the web server publishes a
// person's decision at any station of its line, and nothing an agent
// publishes nor another line's; an agent may not publish a person's
// decision.
func TestWebPublishesOnlyPeoplesDecisions(t *testing.T) {
	forEachServer(t, func(t *testing.T, r *rig) {
		web := r.conn("web-L1")
		for _, forged := range []string{
			event.Subject("US1", "L1", "W01", event.KindCycle),
			event.Subject("US1", "L2", "W01", event.KindHuman),
		} {
			if err := web.Publish(forged, []byte("{}")); err != nil {
				t.Fatal(err)
			}
			web.denied(t, forged)
		}
		w01 := r.conn("agent-W01")
		forged := rawEvent(t, humanEvent(t, "L1", "W01"))
		if err := w01.PublishMsg(forged); err != nil {
			t.Fatal(err)
		}
		w01.denied(t, forged.Subject)
		if err := streams.NewPublisher(r.js(web)).Publish(t.Context(), humanEvent(t, "L1", "T02")); err != nil {
			t.Fatalf("web publishing a decision at T02: %v", err)
		}
		got := r.streamSubjects(event.StreamName)
		if want := event.Subject("US1", "L1", "T02", event.KindHuman); len(got) != 1 || got[0] != want {
			t.Errorf("stream KEILINE holds %v, want only %s", got, want)
		}
	})
}
