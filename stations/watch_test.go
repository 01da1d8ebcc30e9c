package stations

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/line"
)

// testSnapshot reads station st as if its PLC held values (tags not given
// hold their kind's zero value; a ua.StatusCode value is a bad quality).
func testSnapshot(st *line.Station, values map[string]any) (*snapshot, []*ua.DataValue) {
	plan, err := newReadPlan(st, st.Tags())
	if err != nil {
		panic(err)
	}
	dvs := make([]*ua.DataValue, len(plan.reads))
	for _, tag := range plan.tags {
		i, read := plan.at[tag]
		if !read {
			continue
		}
		v, ok := values[tag]
		if !ok {
			v = map[line.Kind]any{line.KindString: "", line.KindBool: false, line.KindInt: uint32(0), line.KindFloat: 0.0}[line.KindOf(tag)]
		}
		if sc, bad := v.(ua.StatusCode); bad {
			dvs[i] = &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: sc}
			continue
		}
		dvs[i] = &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}
	}
	return plan.decode(dvs), dvs
}

func TestDecodeHandshake(t *testing.T) {
	st := watchStation("T01")
	tests := []struct {
		name   string
		values map[string]any
		want   Handshake
		detail string
	}{
		{name: "idle", values: map[string]any{"CycleCounter": uint32(7), "AckCounter": uint32(7)},
			want: HandshakeWaiting, detail: "no result waits; cycle 7 was the last acknowledged"},
		{name: "result waits", values: map[string]any{"CycleCounter": uint32(8), "AckCounter": uint32(7), "DataReady": true},
			want: HandshakeDataReady, detail: "cycle 8 waits for the MES; AckCounter is 7"},
		{name: "acknowledged, not yet cleared", values: map[string]any{"CycleCounter": uint32(8), "AckCounter": uint32(8), "DataReady": true},
			want: HandshakeAcknowledged, detail: "the MES acknowledged cycle 8"},
		{name: "blocked", values: map[string]any{"CycleCounter": uint32(9), "AckCounter": uint32(8), "DataReady": true, "State": "blocked", "FaultCode": int32(900)},
			want: HandshakeBlocked, detail: "the PLC holds its car: its results wait for the MES; cycle 9 is shown, AckCounter is 8"},
		{name: "fault 900 alone is blocked", values: map[string]any{"FaultCode": int32(900)}, want: HandshakeBlocked},
		{name: "unreadable counter", values: map[string]any{"CycleCounter": ua.StatusBadNodeIDUnknown},
			want: HandshakeUnknown, detail: "CycleCounter (node ns=1;s=T01.CycleCounter): bad quality"},
		{name: "counter of the wrong type", values: map[string]any{"AckCounter": "seven"},
			want: HandshakeUnknown, detail: "AckCounter (node ns=1;s=T01.AckCounter): wrong type: String, want integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := testSnapshot(&st, tt.values)
			got, detail := decodeHandshake(s)
			if got != tt.want || !strings.Contains(detail, tt.detail) {
				t.Errorf("decodeHandshake = %s %q, want %s %q", got, detail, tt.want, tt.detail)
			}
		})
	}
}

func TestWatcherFrameAndRender(t *testing.T) {
	st := watchStation("T01")
	w := NewWatcher(&line.Config{}, &st, 250*time.Millisecond)
	t0 := time.Now().UTC().Truncate(time.Second)
	frame := func(at time.Duration, values map[string]any) (WatchFrame, string) {
		s, dvs := testSnapshot(&st, values)
		f := w.frame(WatchFrame{Station: "T01", Endpoint: "opc.tcp://plc:4840", At: t0.Add(at), Interval: 250 * time.Millisecond}, s, dvs)
		return f, RenderWatch(f)
	}
	end := t0.Add(-time.Minute + 123*time.Millisecond).UTC()
	ready := map[string]any{"CycleCounter": uint32(8), "AckCounter": uint32(7), "DataReady": true, "Heartbeat": int32(41),
		"State": "running", "VinPresent": "7KLKW1NA5XU000009", "Result.EndTime": end.UnixMilli(), "Joint1.TorqueNm": 101.5,
		"Part1.Lot": ua.StatusBadNodeIDUnknown}
	_, screen := frame(0, ready)
	for _, want := range []string{
		"station T01  opc.tcp://plc:4840  " + t0.Format("2006-01-02 15:04:05.000") + "  every 250ms",
		"handshake  DATA READY  cycle 8 waits for the MES; AckCounter is 7  (for 0s)",
		"state      running  fault 0  andon no  heartbeat 41 (alive)  VIN present 7KLKW1NA5XU000009",
		"Result.EndTime",
		fmt.Sprintf("%d (%s)", end.UnixMilli(), end.Format("2006-01-02 15:04:05.000Z")),
		"Joint1.TorqueNm",
		"101.5",
		"BAD: bad quality: ",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen does not show %q:\n%s", want, screen)
		}
	}
	// Still waiting 3 s later, with a heartbeat that stopped: watch hints
	// at the cause.
	f, screen := frame(3*time.Second+500*time.Millisecond, ready)
	if f.Since != t0 {
		t.Errorf("since = %s, want the time the state began", f.Since)
	}
	for _, want := range []string{"(for 3.5s)  — is an agent running for this station?", "heartbeat 41 (STALE for 4s)"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen does not show %q:\n%s", want, screen)
		}
	}
	// Acknowledged: a new state starts its own clock.
	acked := map[string]any{"CycleCounter": uint32(8), "AckCounter": uint32(8), "DataReady": true, "Heartbeat": int32(44), "Andon": true,
		"State": "fault", "FaultCode": int32(12), "FaultText": "light curtain"}
	_, screen = frame(4*time.Second, acked)
	for _, want := range []string{"handshake  ACKNOWLEDGED  the MES acknowledged cycle 8", "(for 0s)",
		`state      fault  fault 12 "light curtain"  andon CALLED  heartbeat 44 (alive)`} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen does not show %q:\n%s", want, screen)
		}
	}
	// A PLC that cannot be read.
	screen = RenderWatch(WatchFrame{Station: "T01", Endpoint: "opc.tcp://plc:4840", At: t0, Interval: time.Second, Err: "station T01: plc opc.tcp://plc:4840: connect: EOF"})
	if !strings.Contains(screen, "no connection: station T01: plc opc.tcp://plc:4840: connect: EOF") {
		t.Errorf("error screen:\n%s", screen)
	}
}

// watchStation is a station whose every tag is mapped to ns=1;s=<id>.<tag>.
func watchStation(id string) line.Station {
	st := line.Station{ID: id, Endpoint: "opc.tcp://127.0.0.1:4840", Parts: 1, Joints: 1, Tests: 1, Nodes: map[string]line.Tag{}}
	for _, tag := range st.Tags() {
		st.Nodes[tag] = line.NodeTag("ns=1;s=" + id + "." + tag)
	}
	return st
}
