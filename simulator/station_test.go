package simulator

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// startOnFreePorts starts a plant on BasePort, trying runs of ports from a
// free one upwards; if none works it falls back to ephemeral ports and
// reports false.
func startOnFreePorts(t *testing.T, cfg Config) (*Plant, bool) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = testLogger(t)
	for base := port; base < port+50*len(line) && base+len(line) < 65535; base += len(line) {
		cfg.BasePort = base
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(t.Context()); err != nil {
			continue // some port of the run is taken
		}
		t.Cleanup(func() { p.Stop() })
		return p, true
	}
	cfg.BasePort = 0
	return startPlant(t, cfg), false
}

// TestStation exercises one station PLC over OPC UA: ports, tag types and
// access, isolation, browsing, the unacknowledged-results stop, faults, a
// power cycle and stopping. The subtests share one plant and run in order.
func TestStation(t *testing.T) {
	p, fixed := startOnFreePorts(t, Config{Seed: 3, Speed: 600, MaxUnacked: 3})
	sts := p.Stations()
	ctx := t.Context()

	t.Run("fixed ports", func(t *testing.T) {
		if !fixed {
			t.Skip("no run of free ports")
		}
		base := mustPort(t, sts[0].Endpoint)
		for i, s := range sts {
			if want := fmt.Sprintf("opc.tcp://127.0.0.1:%d", base+i); s.Endpoint != want {
				t.Errorf("station %s endpoint %s, want %s", s.ID, s.Endpoint, want)
			}
		}
	})

	t.Run("endpoints advertise the station URL", func(t *testing.T) {
		eps, err := opcua.GetEndpoints(ctx, sts[5].Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		if len(eps) != 1 || eps[0].EndpointURL != sts[5].Endpoint || eps[0].SecurityMode != ua.MessageSecurityModeNone {
			for _, ep := range eps {
				t.Logf("endpoint %s %v", ep.EndpointURL, ep.SecurityMode)
			}
			t.Errorf("GetEndpoints(%s): want one endpoint with that URL, security None", sts[5].Endpoint)
		}
	})

	t.Run("tag types and access", func(t *testing.T) {
		c04 := sts[stationIndex["C04"]]
		c := connect(t, ctx, c04.Endpoint)
		cases := []struct {
			tag    string
			dt     uint32
			access byte
			zero   any
		}{
			{TagHeartbeat, id.Int32, 1, int32(0)},
			{TagState, id.String, 1, ""},
			{TagFaultCode, id.Int32, 1, int32(0)},
			{TagFaultText, id.String, 1, ""},
			{TagAndon, id.Boolean, 1, false},
			{TagStateCounter, id.UInt32, 1, uint32(0)},
			{TagVinPresent, id.String, 1, ""},
			{TagCycleCounter, id.UInt32, 1, uint32(0)},
			{TagDataReady, id.Boolean, 1, false},
			{TagAckCounter, id.UInt32, 3, uint32(0)},
			{"Result.Status", id.String, 1, ""},
			{"Result.StartTime", id.Int64, 1, int64(0)},
			{"Result.EndTime", id.Int64, 1, int64(0)},
			{"Part1.Lot", id.String, 1, ""},
			{"Joint16.TorqueNm", id.Double, 1, float64(0)},
			{"Joint16.OK", id.Boolean, 1, false},
		}
		for _, tc := range cases {
			nid := ua.MustParseNodeID(c04.Nodes[tc.tag])
			resp, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
				{NodeID: nid, AttributeID: ua.AttributeIDDataType},
				{NodeID: nid, AttributeID: ua.AttributeIDAccessLevel},
				{NodeID: nid, AttributeID: ua.AttributeIDValue},
				{NodeID: nid, AttributeID: ua.AttributeIDNodeClass},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if dt, ok := resp.Results[0].Value.Value().(*ua.NodeID); !ok || dt.IntID() != tc.dt {
				t.Errorf("%s: DataType %v, want i=%d", tc.tag, resp.Results[0].Value.Value(), tc.dt)
			}
			if got := resp.Results[1].Value.Value(); got != tc.access {
				t.Errorf("%s: AccessLevel %v, want %d", tc.tag, got, tc.access)
			}
			if got := resp.Results[2].Value.Value(); reflect.TypeOf(got) != reflect.TypeOf(tc.zero) {
				t.Errorf("%s: value %v of type %T, want %T", tc.tag, got, got, tc.zero)
			}
			if got := resp.Results[3].Value.Value(); got != int32(ua.NodeClassVariable) {
				t.Errorf("%s: NodeClass %v", tc.tag, got)
			}
		}
		if _, ok := c04.Nodes["Joint17.Name"]; ok {
			t.Errorf("C04 has a 17th joint slot")
		}
	})

	t.Run("writes", func(t *testing.T) {
		c04 := sts[stationIndex["C04"]]
		c := connect(t, ctx, c04.Endpoint)
		for _, tc := range []struct {
			name string
			node string
			v    any
			want ua.StatusCode
		}{
			{"ack uint32", c04.Nodes[TagAckCounter], uint32(0), ua.StatusOK},
			{"ack int32", c04.Nodes[TagAckCounter], int32(1), ua.StatusBadTypeMismatch},
			{"ack int64", c04.Nodes[TagAckCounter], int64(1), ua.StatusBadTypeMismatch},
			{"read-only tag", c04.Nodes[TagState], "running", ua.StatusBadNotWritable},
			{"station folder", "ns=1;s=C04", uint32(1), ua.StatusBadNotWritable},
			{"namespace 0", "i=2258", uint32(1), ua.StatusBadNotWritable},
			{"unknown namespace", "ns=7;s=C04.AckCounter", uint32(1), ua.StatusBadNodeIDUnknown},
			{"other station", sts[0].Nodes[TagAckCounter], uint32(1), ua.StatusBadNodeIDUnknown},
		} {
			st, err := writeAck(ctx, c, tc.node, tc.v)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if st != tc.want {
				t.Errorf("%s: write status %v, want %v", tc.name, st, tc.want)
			}
		}
	})

	t.Run("a station sees only its own tags", func(t *testing.T) {
		c04 := sts[stationIndex["C04"]]
		c := connect(t, ctx, c04.Endpoint)
		resp, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
			{NodeID: ua.MustParseNodeID(sts[0].Nodes[TagState]), AttributeID: ua.AttributeIDValue},
			{NodeID: ua.MustParseNodeID("ns=9;s=x"), AttributeID: ua.AttributeIDValue},
			{NodeID: ua.NewNumericNodeID(0, id.Server_NamespaceArray), AttributeID: ua.AttributeIDValue},
			{NodeID: ua.MustParseNodeID(c04.Nodes[TagState]), AttributeID: ua.AttributeIDValue},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Results[0].Status != ua.StatusBadNodeIDUnknown || resp.Results[1].Status != ua.StatusBadNodeIDUnknown {
			t.Errorf("read of W01 tag / unknown namespace through C04: %v %v", resp.Results[0].Status, resp.Results[1].Status)
		}
		if ns, _ := resp.Results[2].Value.Value().([]string); len(ns) != 2 || ns[1] != NamespaceURI {
			t.Errorf("namespace array %v", resp.Results[2].Value.Value())
		}
		if resp.Results[3].Status != ua.StatusOK || resp.Results[3].Value.String() == "" {
			t.Errorf("C04 State: %v %v", resp.Results[3].Status, resp.Results[3].Value)
		}

		// Straight to the core, past the station endpoints: no tags.
		direct := connect(t, ctx, "opc.tcp://"+p.core.addr)
		resp, err = direct.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
			{NodeID: ua.MustParseNodeID(c04.Nodes[TagState]), AttributeID: ua.AttributeIDValue},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Results[0].Status != ua.StatusBadNodeIDUnknown {
			t.Errorf("direct core connection read C04 State: %v", resp.Results[0].Status)
		}
		direct.Close(ctx)
	})

	t.Run("browse", func(t *testing.T) {
		c04 := sts[stationIndex["C04"]]
		c := connect(t, ctx, c04.Endpoint)
		hier := ua.NewNumericNodeID(0, id.HierarchicalReferences)
		br, err := c.Browse(ctx, &ua.BrowseRequest{NodesToBrowse: []*ua.BrowseDescription{
			{NodeID: ua.NewNumericNodeID(0, id.ObjectsFolder), BrowseDirection: ua.BrowseDirectionForward, ReferenceTypeID: hier, IncludeSubtypes: true},
			{NodeID: ua.NewStringNodeID(1, "C04"), BrowseDirection: ua.BrowseDirectionForward, ReferenceTypeID: hier, IncludeSubtypes: true},
			// Plain gopcua loops and panics on this one.
			{NodeID: ua.NewNumericNodeID(0, id.RootFolder), BrowseDirection: ua.BrowseDirectionForward, ReferenceTypeID: hier, IncludeSubtypes: false},
		}})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range br.Results[0].References {
			if r.NodeID.NodeID.String() == "ns=1;s=C04" {
				found = true
			}
		}
		if !found {
			t.Errorf("Objects has no reference to the C04 folder")
		}
		if got, want := len(br.Results[1].References), len(c04.Nodes); got != want {
			t.Errorf("C04 folder has %d references, want %d", got, want)
		}
		if _, err := readValues(ctx, c, []string{c04.Nodes[TagState]}); err != nil {
			t.Errorf("plant unreachable after browse: %v", err)
		}
	})

	t.Run("blocks without acks", func(t *testing.T) {
		w01 := sts[0]
		c := connect(t, ctx, w01.Endpoint)
		nodes := []string{w01.Nodes[TagState], w01.Nodes[TagFaultCode], w01.Nodes[TagFaultText],
			w01.Nodes[TagCycleCounter], w01.Nodes[TagDataReady], w01.Nodes[TagStateCounter]}
		var dvs []*ua.DataValue
		waitFor(t, 20*time.Second, "W01 blocked with fault 900", func() bool {
			var err error
			dvs, err = readValues(ctx, c, nodes)
			if err != nil {
				t.Fatal(err)
			}
			return dvs[0].Value.String() == StateBlocked && dvs[1].Value.Value() == int32(FaultCodeUnacked)
		})
		if got := dvs[2].Value.String(); got != FaultTextUnacked {
			t.Errorf("FaultText %q, want %q", got, FaultTextUnacked)
		}
		if got := dvs[3].Value.Value(); got != uint32(1) {
			t.Errorf("CycleCounter shown %v, want the oldest pending, 1", got)
		}
		if !dvs[4].Value.Bool() {
			t.Errorf("DataReady false while results wait")
		}
		if s := p.Stats().Stations[0]; s.CycleCounter != 3 || s.Unacked != 3 {
			t.Errorf("W01 made %d cycles with %d unacked, want 3 and 3", s.CycleCounter, s.Unacked)
		}

		// A wrong acknowledgement is ignored; the right one frees a slot:
		// W01 finishes its held cycle 4 and blocks again.
		for _, v := range []uint32{2, 1} {
			if st, err := writeAck(ctx, c, w01.Nodes[TagAckCounter], v); err != nil || st != ua.StatusOK {
				t.Fatalf("write ack %d: %v %v", v, st, err)
			}
		}
		waitFor(t, 10*time.Second, "W01 cycle 4", func() bool { return p.Stats().Stations[0].CycleCounter == 4 })
		dvs, err := readValues(ctx, c, nodes)
		if err != nil {
			t.Fatal(err)
		}
		if got := dvs[3].Value.Value(); got != uint32(2) {
			t.Errorf("after ack 1 CycleCounter shown %v, want 2 (ack 2 before it must have been ignored)", got)
		}
		if s := p.Stats().Stations[0]; s.Unacked != 3 {
			t.Errorf("W01 has %d unacked, want 3", s.Unacked)
		}
	})

	t.Run("inject fault", func(t *testing.T) {
		t02 := sts[stationIndex["T02"]]
		c := connect(t, ctx, t02.Endpoint)
		if err := p.InjectFault("T02", 201, "tool fault: test", 500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		nodes := []string{t02.Nodes[TagState], t02.Nodes[TagFaultCode], t02.Nodes[TagFaultText]}
		var dvs []*ua.DataValue
		waitFor(t, 5*time.Second, "T02 fault", func() bool {
			var err error
			dvs, err = readValues(ctx, c, nodes)
			if err != nil {
				t.Fatal(err)
			}
			return dvs[0].Value.String() == StateFault
		})
		if dvs[1].Value.Value() != int32(201) || dvs[2].Value.String() != "tool fault: test" {
			t.Errorf("fault %v %q", dvs[1].Value.Value(), dvs[2].Value.String())
		}
		waitFor(t, 10*time.Second, "T02 fault to clear", func() bool {
			dvs, err := readValues(ctx, c, nodes)
			if err != nil {
				t.Fatal(err)
			}
			return dvs[0].Value.String() != StateFault && dvs[1].Value.Value() != int32(201)
		})
		for _, bad := range []struct {
			st   string
			code int32
			d    time.Duration
		}{{"X99", 1, time.Second}, {"T02", 0, time.Second}, {"T02", 1, 0}} {
			if err := p.InjectFault(bad.st, bad.code, "", bad.d); err == nil {
				t.Errorf("InjectFault(%s, %d, %v) accepted", bad.st, bad.code, bad.d)
			}
		}
	})

	t.Run("restart station", func(t *testing.T) {
		w01 := sts[0]
		c := connect(t, ctx, w01.Endpoint)
		nodes := []string{w01.Nodes[TagCycleCounter], w01.Nodes[TagStateCounter], w01.Nodes[TagDataReady]}
		before, err := readValues(ctx, c, nodes)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.RestartStation(ctx, "W01"); err != nil {
			t.Fatal(err)
		}
		if _, err := readValues(ctx, c, nodes); err == nil {
			t.Errorf("old connection still works after the restart")
		}
		if got := p.Stations()[0].Endpoint; got != w01.Endpoint {
			t.Errorf("endpoint %s after restart, want %s", got, w01.Endpoint)
		}
		c2 := connect(t, ctx, w01.Endpoint)
		after, err := readValues(ctx, c2, nodes)
		if err != nil {
			t.Fatal(err)
		}
		// W01 is held (no acks): its retentive result queue is unchanged.
		if after[0].Value.Value() != before[0].Value.Value() || !after[2].Value.Bool() {
			t.Errorf("after restart CycleCounter %v DataReady %v, before %v %v",
				after[0].Value.Value(), after[2].Value.Bool(), before[0].Value.Value(), before[2].Value.Bool())
		}
		if after[1].Value.Value().(uint32) < before[1].Value.Value().(uint32) {
			t.Errorf("StateCounter went back: %v -> %v", before[1].Value.Value(), after[1].Value.Value())
		}
		if err := p.RestartStation(ctx, "X99"); err == nil {
			t.Errorf("restart of unknown station accepted")
		}
	})

	t.Run("subscription", func(t *testing.T) {
		c := connect(t, ctx, sts[22].Endpoint)
		ch := make(chan *opcua.PublishNotificationData, 16)
		sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 20 * time.Millisecond}, ch)
		if err != nil {
			t.Fatal(err)
		}
		res, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth,
			opcua.NewMonitoredItemCreateRequestWithDefaults(ua.MustParseNodeID(sts[22].Nodes[TagHeartbeat]), ua.AttributeIDValue, 1))
		if err != nil || res.Results[0].StatusCode != ua.StatusOK {
			t.Fatalf("monitor heartbeat: %v %v", err, res)
		}
		seen := map[int32]bool{}
		deadline := time.After(10 * time.Second)
		for len(seen) < 2 {
			select {
			case msg := <-ch:
				if msg.Error != nil {
					t.Fatal(msg.Error)
				}
				if d, ok := msg.Value.(*ua.DataChangeNotification); ok {
					for _, it := range d.MonitoredItems {
						seen[it.Value.Value.Value().(int32)] = true
					}
				}
			case <-deadline:
				t.Fatalf("heartbeat notifications: %v", seen)
			}
		}
		// The subscription is left open: Stop must end it.
	})

	t.Run("stop with clients connected", func(t *testing.T) {
		c := connect(t, ctx, sts[22].Endpoint)
		if _, err := readValues(ctx, c, []string{sts[22].Nodes[TagState]}); err != nil {
			t.Fatal(err)
		}
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := readValues(ctx, c, []string{sts[22].Nodes[TagState]}); err == nil {
			t.Errorf("client still served after Stop")
		}
		if err := p.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		if err := p.RestartStation(ctx, "T02"); err == nil {
			t.Errorf("restart on a stopped plant succeeded")
		}
		if err := p.Start(ctx); err == nil {
			t.Errorf("start of a stopped plant succeeded")
		}
		if err := p.InjectFault("T02", 1, "", time.Second); err == nil {
			t.Errorf("fault on a stopped plant accepted")
		}
		// The ports are free again.
		for _, s := range sts {
			l, err := net.Listen("tcp", strings.TrimPrefix(s.Endpoint, "opc.tcp://"))
			if err != nil {
				t.Errorf("station %s: port not released by Stop: %v", s.ID, err)
				continue
			}
			l.Close()
		}
	})
}

func TestStopBeforeStart(t *testing.T) {
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Start(context.WithoutCancel(t.Context())); err == nil {
		t.Errorf("start after stop succeeded")
	}
}

func mustPort(t *testing.T, url string) int {
	t.Helper()
	var port int
	if _, err := fmt.Sscanf(url[len("opc.tcp://127.0.0.1:"):], "%d", &port); err != nil {
		t.Fatal(err)
	}
	return port
}

// TestUnreadableTorque: with BadValueRate, a joint's torque reads with bad
// quality (and nothing else of the block does) while its result is shown;
// the truth names the tag, and the rework bay redoes the joint.
func TestUnreadableTorque(t *testing.T) {
	const rate = 0.5
	pl := newPlanner(3, WMIDefault)
	pl.badRate = rate
	var hit *carPlan
	for k := 1; k <= 20 && hit == nil; k++ {
		c, err := pl.plan(k)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.results[stationIndex["C04"]].unreadable) > 0 {
			hit = c
		}
	}
	if hit == nil {
		t.Fatal("no car of 20 got an unreadable torque at C04 at rate 0.5")
	}
	c04 := hit.results[stationIndex["C04"]]
	k := c04.unreadable[0]
	tc := truthCar(hit)
	var sawC04, sawR01 bool
	for _, ts := range tc.Stations {
		switch ts.Station {
		case "C04":
			sawC04 = slices.Equal(ts.Unreadable, []string{fmt.Sprintf("Joint%d.TorqueNm", k+1)})
		case reworkStation:
			sawR01 = slices.ContainsFunc(ts.Joints, func(j Joint) bool { return j.Name == c04.Joints[k].Name && j.OK })
		}
	}
	if !sawC04 || !sawR01 {
		t.Fatalf("truth %+v: want C04's Joint%d.TorqueNm unreadable and the joint redone at R01", tc.Stations, k+1)
	}
	// The block's values: the torque a bad reading, the rest as they are.
	vs := blockValues(1, 16, 0, &blockResult{Res: &c04})
	torqueAt := 7 + 4 + 5*k + 2 // header of the block, one part, joint k's TorqueNm
	if br, ok := vs[torqueAt].(badReading); !ok || br.code != ua.StatusBadSensorFailure {
		t.Fatalf("joint %d torque shown as %v, want a bad reading", k+1, vs[torqueAt])
	}
	bad := 0
	for _, v := range vs {
		if _, ok := v.(badReading); ok {
			bad++
		}
	}
	if bad != len(c04.unreadable) {
		t.Fatalf("%d bad readings in the block, want %d", bad, len(c04.unreadable))
	}
	if err := (Config{BadValueRate: 0.9}).Validate(); err == nil || !strings.Contains(err.Error(), "BadValueRate 0.9") {
		t.Fatalf("Validate(BadValueRate 0.9) = %v", err)
	}
}
