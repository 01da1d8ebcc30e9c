package event_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
)

func body(t *testing.T, ev *event.Event) []byte {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cycleOf(t *testing.T, at time.Time, c *event.Cycle) *event.Event {
	t.Helper()
	ev, err := event.NewEvent("US1", "L1", "C04", event.KindCycle, "JK1AB12C3DE456789", c.Epoch, uint64(c.Counter), at, at, c)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestDiffers: a redelivery or a republish of the same occurrence is no
// conflict; a different cycle under the same id is, naming what differs.
func TestDiffers(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	nm := func(v float64) *float64 { return &v }
	base := func() *event.Cycle {
		return &event.Cycle{Counter: 7, Result: "OK", Model: "KV", StartedAt: now.Add(-time.Minute),
			Joints: []event.Joint{{Joint: "wheel_nut_1", Tool: "NR1", TorqueNm: nm(110), OK: new(true)}}}
	}
	first := cycleOf(t, now, base())
	later := *first
	later.RecordedAt = now.Add(time.Hour) // republished from the spool
	other := base()
	other.Result, other.Joints[0].TorqueNm = "NOK", nm(80)
	otherEv := cycleOf(t, now.Add(10*time.Minute), other)
	agent := base()
	agent.Clock = event.ClockAgent
	agentFirst := cycleOf(t, now, agent)
	agent2 := base()
	agent2.Clock, agent2.StartedAt = event.ClockAgent, now.Add(time.Hour)
	agentAgain := cycleOf(t, now.Add(time.Hour), agent2) // the agent restarted: its own clock again
	stateOf := func(at time.Time, s *event.State) []byte {
		ev, err := event.NewEvent("US1", "L1", "C04", event.KindState, "", s.Epoch, s.Counter, at, at, s)
		if err != nil {
			t.Fatal(err)
		}
		return body(t, ev)
	}
	running := &event.State{Counter: 12, State: "running", VinPresent: "JK1AB12C3DE456789"}
	faulted := &event.State{Counter: 12, State: "fault", FaultCode: 7, VinPresent: "JK1AB12C3DE456789"}
	for _, c := range []struct {
		name     string
		a, b     []byte
		want     []string
		conflict bool
	}{
		{"redelivery", body(t, first), body(t, first), nil, false},
		{"republished later", body(t, first), body(t, &later), nil, false},
		{"agent-clock cycle seen again after a restart", body(t, agentFirst), body(t, agentAgain), nil, false},
		{"another cycle after a counter reset", body(t, first), body(t, otherEv), []string{"occurred_at", "data.joints", "data.result"}, true},
		{"garbage", body(t, first), []byte("\xff\xfe"), []string{"payload"}, true},
		{"state change seen again by a restarted agent", stateOf(now, running), stateOf(now.Add(time.Hour), running), nil, false},
		{"another state change under the same counter", stateOf(now, running), stateOf(now, faulted), []string{"data.fault_code", "data.state"}, true},
	} {
		got := event.Differs(c.a, c.b)
		if (got != nil) != c.conflict || (c.want != nil && !slices.Equal(got, c.want)) {
			t.Errorf("%s: Differs = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestConflictEvent: the tracker's conflict is named by the conflicting
// message, carries it, and no station may publish one.
func TestConflictEvent(t *testing.T) {
	now := time.Now()
	c := &event.Cycle{Counter: 3, Result: "OK", Model: "KV", StartedAt: now}
	ev := cycleOf(t, now, c)
	payload := body(t, ev)
	cf, err := event.NewConflict(ev, 42, payload, []string{"data.result"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if cf.ID != event.ConflictID(ev.ID, payload) || !strings.HasPrefix(cf.ID, ev.ID+".conflict.") {
		t.Errorf("conflict id %s", cf.ID)
	}
	if event.ConflictID(ev.ID, append(payload, ' ')) == cf.ID {
		t.Error("two different conflicting messages share a conflict id")
	}
	d, err := cf.Conflict()
	if err != nil || d.EventID != ev.ID || d.StoredSeq != 42 || string(d.Payload) != string(payload) || !strings.Contains(d.Text, "seq 42") {
		t.Errorf("conflict data %+v, %v", d, err)
	}
	if _, err := event.DecodeFor(body(t, cf), event.IdentityAny); err == nil || !strings.Contains(err.Error(), "tracker's own") {
		t.Errorf("a published conflict event: %v, want refused", err)
	}
}
