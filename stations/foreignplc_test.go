package stations_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/internal/testplc"
	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/stations"
)

// The foreign PLC (testdata/opcua/foreign.js) looks like the OPC UA server
// of a Siemens S7-1500 with an integrator's data blocks: S7 node ids in
// namespace 3, S7 types, MaxNodesPerRead 10, a strictly typed AckCtr.
// testdata/opcua/FOREIGN.md is its data sheet. The tests here check the
// PLC's own fidelity with raw gopcua, so that tests of keiline's tag map
// against it can trust it.

const foreignS7URI = "http://www.siemens.com/simatic-s7-opcua"

// s7Node returns the node id of S7 symbol sym in the S7 namespace:
// s7Node(`"DB100"."CycleCtr"`) is ns=3;s="DB100"."CycleCtr".
func s7Node(sym string) *ua.NodeID { return ua.NewStringNodeID(testplc.ForeignNS, sym) }

// foreignClient connects a plain gopcua client (security None, anonymous).
func foreignClient(t *testing.T, ctx context.Context, endpoint string, opts ...opcua.Option) *opcua.Client {
	t.Helper()
	c, err := opcua.NewClient(endpoint, append([]opcua.Option{opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect to the foreign PLC: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.WithoutCancel(ctx)) })
	return c
}

// readS7 reads the values of syms (at most 10, the PLC's limit) and fails
// the test on a service error; it returns the data values in order.
func readS7(t *testing.T, ctx context.Context, c *opcua.Client, syms ...string) []*ua.DataValue {
	t.Helper()
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth}
	for _, s := range syms {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: s7Node(s), AttributeID: ua.AttributeIDValue})
	}
	res, err := c.Read(ctx, req)
	if err != nil {
		t.Fatalf("read %v: %v", syms, err)
	}
	if len(res.Results) != len(syms) {
		t.Fatalf("read %d nodes, got %d results", len(syms), len(res.Results))
	}
	return res.Results
}

// s7GoodValues reads syms and fails the test unless every one is Good; it
// returns the values in order.
func s7GoodValues(t *testing.T, ctx context.Context, c *opcua.Client, syms ...string) []any {
	t.Helper()
	var out []any
	for i, dv := range readS7(t, ctx, c, syms...) {
		if dv.Status != ua.StatusOK {
			t.Fatalf("read %s: %v", syms[i], dv.Status)
		}
		out = append(out, dv.Value.Value())
	}
	return out
}

// writeS7 writes v to sym and returns the node's status (or the service
// error).
func writeS7(ctx context.Context, c *opcua.Client, sym string, v *ua.DataValue) error {
	res, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: s7Node(sym), AttributeID: ua.AttributeIDValue, Value: v}}})
	if err != nil {
		return err
	}
	if res.Results[0] != ua.StatusOK {
		return res.Results[0]
	}
	return nil
}

func s7Value(v any) *ua.DataValue {
	return &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}
}

// s7WaitValue polls sym until it reads Good with a value for which ok holds.
func s7WaitValue(t *testing.T, ctx context.Context, c *opcua.Client, sym string, ok func(any) bool) any {
	t.Helper()
	deadline := time.Now().Add(testplc.WaitLimit)
	var last any
	for time.Now().Before(deadline) {
		dv := readS7(t, ctx, c, sym)[0]
		if dv.Status == ua.StatusOK {
			last = dv.Value.Value()
			if ok(last) {
				return last
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never got the value awaited; last %v", sym, last)
	return nil
}

// s7WaitScans waits until the PLC has run n more scans (it counts them in
// "Diagnostics"."ScanCtr"): what a write changed in the handshake, the PLC
// program has seen by then.
func s7WaitScans(t *testing.T, ctx context.Context, c *opcua.Client, n int32) {
	t.Helper()
	from := s7GoodValues(t, ctx, c, `"Diagnostics"."ScanCtr"`)[0].(int32)
	s7WaitValue(t, ctx, c, `"Diagnostics"."ScanCtr"`, func(v any) bool { return v.(int32) >= from+n })
}

// s7Children browses node's hierarchical references forward and returns the
// children's node ids by browse name.
func s7Children(t *testing.T, ctx context.Context, c *opcua.Client, node *ua.NodeID) map[string]string {
	t.Helper()
	refs, err := c.Node(node).References(ctx, id.HierarchicalReferences, ua.BrowseDirectionForward, ua.NodeClassObject|ua.NodeClassVariable, true)
	if err != nil {
		t.Fatalf("browse %s: %v", node, err)
	}
	out := map[string]string{}
	for _, r := range refs {
		out[r.BrowseName.Name] = r.NodeID.NodeID.String()
	}
	return out
}

func TestForeignPLCAddressSpace(t *testing.T) {
	t.Parallel()
	p := testplc.StartForeign(t, "--stations", "FR:100:both,NR:200:body", "--paused", "--life-start", "32760", "--life-ms", "20")
	ctx := t.Context()
	c := foreignClient(t, ctx, p.Endpoint)

	t.Run("namespace 3 is the S7 namespace", func(t *testing.T) {
		v, err := c.Node(ua.NewNumericNodeID(0, id.Server_NamespaceArray)).Value(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ns, _ := v.Value().([]string)
		if len(ns) <= testplc.ForeignNS || ns[testplc.ForeignNS] != foreignS7URI {
			t.Fatalf("namespace array %q: want %s at index %d", ns, foreignS7URI, testplc.ForeignNS)
		}
	})

	t.Run("endpoints: None and Basic256Sha256", func(t *testing.T) {
		eps, err := opcua.GetEndpoints(ctx, p.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ep := range eps {
			got = append(got, strings.TrimPrefix(ep.SecurityPolicyURI, "http://opcfoundation.org/UA/SecurityPolicy#")+"/"+ep.SecurityMode.String())
		}
		for _, want := range []string{"None/MessageSecurityModeNone", "Basic256Sha256/MessageSecurityModeSign", "Basic256Sha256/MessageSecurityModeSignAndEncrypt"} {
			if !slices.Contains(got, want) {
				t.Errorf("endpoints %v lack %s", got, want)
			}
		}
	})

	t.Run("browse tree as an S7-1500", func(t *testing.T) {
		walk := func(from *ua.NodeID, want map[string]string) map[string]string {
			t.Helper()
			got := s7Children(t, ctx, c, from)
			for name, nodeID := range want {
				if got[name] != nodeID {
					t.Errorf("below %s: %s is %q, want %q (children %v)", from, name, got[name], nodeID, got)
				}
			}
			return got
		}
		walk(ua.NewNumericNodeID(0, id.ObjectsFolder), map[string]string{"PLC_1": "ns=3;s=PLC"})
		walk(s7Node("PLC"), map[string]string{"DataBlocksGlobal": "ns=3;s=DataBlocksGlobal", "DataBlocksInstance": "ns=3;s=DataBlocksInstance",
			"Inputs": "ns=3;s=Inputs", "Outputs": "ns=3;s=Outputs", "Memory": "ns=3;s=Memory"})
		dbs := walk(s7Node("DataBlocksGlobal"), map[string]string{"DB100": `ns=3;s="DB100"`, "DB101": `ns=3;s="DB101"`,
			"DB200": `ns=3;s="DB200"`, "DB201": `ns=3;s="DB201"`, "Conveyor_M1": `ns=3;s="Conveyor_M1"`, "Diagnostics": `ns=3;s="Diagnostics"`})
		if len(dbs) != 6 {
			t.Errorf("DataBlocksGlobal holds %v, want the four station DBs and two others", dbs)
		}
		fr := walk(s7Node(`"DB100"`), map[string]string{"Ready": `ns=3;s="DB100"."Ready"`, "CycleCtr": `ns=3;s="DB100"."CycleCtr"`,
			"AckCtr": `ns=3;s="DB100"."AckCtr"`, "BodyNo": `ns=3;s="DB100"."BodyNo"`, "VIN": `ns=3;s="DB100"."VIN"`})
		nr := walk(s7Node(`"DB200"`), map[string]string{"BodyNo": `ns=3;s="DB200"."BodyNo"`})
		if _, ok := nr["VIN"]; ok {
			t.Errorf("the body-number station NR has a VIN node: %v", nr)
		}
		for _, absent := range []string{"StartTime", "EndTime", "Andon", "FaultText", "StateCounter"} {
			if _, ok := fr[absent]; ok {
				t.Errorf("DB100 has %s, which this PLC does not have", absent)
			}
		}
		walk(s7Node(`"DB101"`), map[string]string{"Nut": `ns=3;s="DB101"."Nut"`, "Angle": `ns=3;s="DB101"."Angle"`,
			"ToolId": `ns=3;s="DB101"."ToolId"`, "NutLot": `ns=3;s="DB101"."NutLot"`, "ClampForce": `ns=3;s="DB101"."ClampForce"`})
		nut := walk(s7Node(`"DB101"."Nut"`), map[string]string{"Nut[1]": `ns=3;s="DB101"."Nut"[1]`, "Nut[4]": `ns=3;s="DB101"."Nut"[4]`})
		if len(nut) != 4 {
			t.Errorf("Nut has %v, want Nut[1]..Nut[4]", nut)
		}
		walk(s7Node(`"DB201"."Nut"[3]`), map[string]string{"Nm": `ns=3;s="DB201"."Nut"[3]."Nm"`, "Result": `ns=3;s="DB201"."Nut"[3]."Result"`})
	})

	t.Run("S7 data types", func(t *testing.T) {
		want := map[string]uint32{
			`"DB100"."Ready"`: id.Boolean, `"DB100"."CycleCtr"`: id.Int32, `"DB100"."AckCtr"`: id.Int32, `"DB100"."LifeCtr"`: id.Int16,
			`"DB100"."State"`: id.Int16, `"DB100"."VIN"`: id.String, `"DB101"."Nut"[2]."Nm"`: id.Int32,
			`"DB101"."Nut"[2]."Result"`: id.Int16, `"DB101"."Angle"`: id.Int16, `"DB101"."ClampForce"`: id.Float,
		}
		for sym, dt := range want {
			v, err := c.Node(s7Node(sym)).Attribute(ctx, ua.AttributeIDDataType)
			if err != nil {
				t.Fatalf("%s: %v", sym, err)
			}
			if got := v.NodeID(); got == nil || got.Namespace() != 0 || got.IntID() != dt {
				t.Errorf("%s has data type %v, want i=%d", sym, got, dt)
			}
		}
		dv := readS7(t, ctx, c, `"DB101"."Angle"`)[0]
		if a, ok := dv.Value.Value().([]int16); !ok || len(a) != 4 {
			t.Errorf("Angle reads %T %v, want an []int16 of 4", dv.Value.Value(), dv.Value.Value())
		}
	})

	t.Run("MaxNodesPerRead is 10", func(t *testing.T) {
		v, err := c.Node(ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)).Value(ctx)
		if err != nil || v.Value() != uint32(10) {
			t.Fatalf("MaxNodesPerRead reads %v (%v), want 10", v, err)
		}
		syms := make([]string, 11)
		for i := range syms {
			syms[i] = `"DB100"."CycleCtr"`
		}
		req := &ua.ReadRequest{}
		for _, s := range syms {
			req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: s7Node(s), AttributeID: ua.AttributeIDValue})
		}
		if _, err := c.Read(ctx, req); !errors.Is(err, ua.StatusBadTooManyOperations) {
			t.Errorf("a Read of 11 nodes: %v, want BadTooManyOperations", err)
		}
		readS7(t, ctx, c, syms[:10]...)
	})

	t.Run("IndexRange reads one Angle element", func(t *testing.T) {
		all := s7GoodValues(t, ctx, c, `"DB101"."Angle"`)[0].([]int16)
		for i := range 4 {
			res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: s7Node(`"DB101"."Angle"`), AttributeID: ua.AttributeIDValue, IndexRange: fmt.Sprint(i)}}})
			if err != nil || res.Results[0].Status != ua.StatusOK {
				t.Fatalf("Angle[%d]: %v %v", i, err, res)
			}
			if got := res.Results[0].Value.Value(); !slices.Equal(got.([]int16), all[i:i+1]) {
				t.Errorf("IndexRange %d reads %v, want [%d]", i, got, all[i])
			}
		}
		res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: s7Node(`"DB101"."Angle"`), AttributeID: ua.AttributeIDValue, IndexRange: "4"}}})
		if err != nil || res.Results[0].Status == ua.StatusOK {
			t.Errorf("IndexRange 4 of a 4-element array: %v %v, want a bad status", err, res.Results[0].Status)
		}
	})

	t.Run("AckCtr takes Int32 only", func(t *testing.T) {
		prev := s7GoodValues(t, ctx, c, `"DB100"."AckCtr"`)[0].(int32)
		for _, v := range []any{uint32(prev), int16(1), int64(prev), float64(prev), fmt.Sprint(prev)} {
			if err := writeS7(ctx, c, `"DB100"."AckCtr"`, s7Value(v)); !errors.Is(err, ua.StatusBadTypeMismatch) {
				t.Errorf("write AckCtr as %T: %v, want BadTypeMismatch", v, err)
			}
		}
		stamped := s7Value(prev)
		stamped.EncodingMask |= ua.DataValueSourceTimestamp
		stamped.SourceTimestamp = time.Now()
		if err := writeS7(ctx, c, `"DB100"."AckCtr"`, stamped); !errors.Is(err, ua.StatusBadWriteNotSupported) {
			t.Errorf("write AckCtr with a source timestamp: %v, want BadWriteNotSupported", err)
		}
		if err := writeS7(ctx, c, `"DB100"."CycleCtr"`, s7Value(prev)); err == nil {
			t.Error("CycleCtr took a write")
		}
		if err := writeS7(ctx, c, `"DB100"."AckCtr"`, s7Value(prev-7)); err != nil {
			t.Fatalf("write AckCtr as Int32: %v", err)
		}
		if got := s7GoodValues(t, ctx, c, `"DB100"."AckCtr"`)[0]; got != prev-7 {
			t.Errorf("AckCtr reads %v after the write of %d", got, prev-7)
		}
	})

	t.Run("keiline's OPC UA layer browses and reads it", func(t *testing.T) {
		plc, err := stations.DialPLC(ctx, stations.Connection{Station: "FR", Endpoint: p.Endpoint})
		if err != nil {
			t.Fatal(err)
		}
		defer plc.Close(context.WithoutCancel(ctx))
		if plc.MaxNodesPerRead() != 10 {
			t.Errorf("keiline reads %d nodes at a time from a PLC that allows 10", plc.MaxNodesPerRead())
		}
		res, err := stations.Browse(ctx, plc, stations.BrowseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var nodes []*ua.NodeID
		found := false
		for _, n := range res.Nodes {
			if n.NodeID == `ns=3;s="DB101"."Nut"[3]."Nm"` {
				found = slices.Equal(n.Path, []string{"PLC_1", "DataBlocksGlobal", "DB101", "Nut", "Nut[3]", "Nm"})
			}
			if n.NodeClass == ua.NodeClassVariable && strings.HasPrefix(n.NodeID, `ns=3;s="DB`) {
				nodes = append(nodes, ua.MustParseNodeID(n.NodeID))
			}
		}
		if !found || res.Truncated != "" {
			t.Errorf("browse found Nut[3].Nm under the right path: %v; truncated %q", found, res.Truncated)
		}
		if len(nodes) != 2*(13+12)-1 { // FR: 13 handshake + 12 result variables, NR the same without VIN
			t.Errorf("browse found %d variables in the station DBs, want 49", len(nodes))
		}
		dvs, err := plc.Read(ctx, nodes)
		if err != nil || len(dvs) != len(nodes) {
			t.Fatalf("read %d nodes in Reads of 10: %v", len(nodes), err)
		}
	})

	t.Run("LifeCtr wraps 32767 to 0", func(t *testing.T) {
		s7WaitValue(t, ctx, c, `"DB200"."LifeCtr"`, func(v any) bool { return v.(int16) >= 0 && v.(int16) < 100 })
	})
}

// foreignResult is a result as read from the nodes by hand.
type foreignResult struct {
	counter    int32
	bodyNo     int32 // 0 where the station has no BodyNo
	vin        string
	model      int16
	verdict    int16
	nm         [4]int32 // 0.01 N·m
	nutResult  [4]int16 // 1 OK, 2 NOK
	angle      []int16  // 0.1°
	toolID     string
	nutLot     string
	clampForce float32 // kN
}

// s7Station names a station's DBs: handshake DB db, result DB db+1.
type s7Station struct {
	name     string
	db       int
	identity string
}

func (s s7Station) hs(m string) string { return fmt.Sprintf(`"DB%d"."%s"`, s.db, m) }
func (s s7Station) rs(m string) string { return fmt.Sprintf(`"DB%d"."%s"`, s.db+1, m) }
func (s s7Station) nut(i int, m string) string {
	return fmt.Sprintf(`"DB%d"."Nut"[%d]."%s"`, s.db+1, i, m)
}

// readForeignResult reads the shown result the way an integrator's client would:
// the blocks in reads of at most 10 nodes, CycleCtr last; it fails the test
// when CycleCtr moved meanwhile.
func readForeignResult(t *testing.T, ctx context.Context, c *opcua.Client, s s7Station) foreignResult {
	t.Helper()
	var r foreignResult
	first := s7GoodValues(t, ctx, c, s.hs("CycleCtr"))[0].(int32)
	ident := []string{s.hs("ModelCode"), s.hs("Verdict")}
	if s.identity != "vin" {
		ident = append(ident, s.hs("BodyNo"))
	}
	if s.identity != "body" {
		ident = append(ident, s.hs("VIN"))
	}
	v := s7GoodValues(t, ctx, c, append(ident, s.rs("Angle"), s.rs("ToolId"), s.rs("NutLot"), s.rs("ClampForce"))...)
	r.model, r.verdict = v[0].(int16), v[1].(int16)
	i := 2
	if s.identity != "vin" {
		r.bodyNo = v[i].(int32)
		i++
	}
	if s.identity != "body" {
		r.vin = v[i].(string)
		i++
	}
	r.angle, r.toolID, r.nutLot, r.clampForce = v[i].([]int16), v[i+1].(string), v[i+2].(string), v[i+3].(float32)
	var nuts []string
	for n := 1; n <= 4; n++ {
		nuts = append(nuts, s.nut(n, "Nm"), s.nut(n, "Result"))
	}
	v = s7GoodValues(t, ctx, c, nuts...)
	for n := range 4 {
		r.nm[n], r.nutResult[n] = v[2*n].(int32), v[2*n+1].(int16)
	}
	r.counter = s7GoodValues(t, ctx, c, s.hs("CycleCtr"))[0].(int32)
	if r.counter != first {
		t.Fatalf("station %s: CycleCtr moved from %d to %d while the result was read without an acknowledgement", s.name, first, r.counter)
	}
	return r
}

// checkForeignTruth compares a result read from the nodes with the PLC's
// truth line, converting units as a tag map would.
func checkForeignTruth(t *testing.T, s s7Station, r foreignResult, tr testplc.ForeignTruth) {
	t.Helper()
	where := fmt.Sprintf("station %s counter %d", s.name, r.counter)
	if r.bodyNo != tr.BodyNo || r.vin != tr.VIN || r.model != tr.ModelCode || r.verdict != tr.Verdict {
		t.Errorf("%s: nodes show body %d VIN %q model %d verdict %d, truth %+v", where, r.bodyNo, r.vin, r.model, r.verdict, tr)
	}
	if (tr.Verdict == 1) != tr.OK || len(tr.Nuts) != 4 {
		t.Errorf("%s: truth verdict %d ok %v with %d nuts", where, tr.Verdict, tr.OK, len(tr.Nuts))
	}
	allOK := true
	for i, n := range tr.Nuts {
		if float64(r.nm[i])/100 != n.TorqueNm || float64(r.angle[i])/10 != n.AngleDeg || (r.nutResult[i] == 1) != n.OK {
			t.Errorf("%s nut %d: nodes %d cN·m %d d° result %d, truth %+v", where, i+1, r.nm[i], r.angle[i], r.nutResult[i], n)
		}
		inWindow := n.TorqueNm >= 97.2 && n.TorqueNm <= 118.8 && n.AngleDeg >= 30 && n.AngleDeg <= 60
		if inWindow != n.OK {
			t.Errorf("%s nut %d: %v N·m %v° is OK=%v, want OK within 108 N·m ±10 %% and 30–60°", where, i+1, n.TorqueNm, n.AngleDeg, n.OK)
		}
		allOK = allOK && n.OK
	}
	if allOK != tr.OK {
		t.Errorf("%s: verdict OK=%v, nuts all OK=%v", where, tr.OK, allOK)
	}
	if r.toolID != tr.ToolID || r.nutLot != tr.NutLot || r.clampForce != float32(tr.ClampForceKN) {
		t.Errorf("%s: nodes tool %q lot %q clamp %v, truth %q %q %v", where, r.toolID, r.nutLot, r.clampForce, tr.ToolID, tr.NutLot, tr.ClampForceKN)
	}
}

// ackForeignByHand waits for a shown result at s, reads it and acknowledges it,
// then waits until the PLC took the acknowledgement; it returns the result.
func ackForeignByHand(t *testing.T, ctx context.Context, c *opcua.Client, p *testplc.Foreign, s s7Station) foreignResult {
	t.Helper()
	s7WaitValue(t, ctx, c, s.hs("Ready"), func(v any) bool { return v == true })
	r := readForeignResult(t, ctx, c, s)
	if err := writeS7(ctx, c, s.hs("AckCtr"), s7Value(r.counter)); err != nil {
		t.Fatalf("station %s: acknowledge %d: %v", s.name, r.counter, err)
	}
	p.WaitEvent(t, "acked", func(ev map[string]any) bool { return ev["station"] == s.name && ev["counter"] == float64(r.counter) })
	return r
}

func TestForeignPLCHandshake(t *testing.T) {
	t.Parallel()
	const cars = 4
	p := testplc.StartForeign(t, "--stations", "FR:100:both,NR:200:body", "--cycle-ms", "50", "--cycles", fmt.Sprint(cars), "--seed", "11", "--nok-rate", "0.5")
	ctx := t.Context()
	c := foreignClient(t, ctx, p.Endpoint)
	fr, nr := s7Station{"FR", 100, "both"}, s7Station{"NR", 200, "body"}

	// Nobody acknowledges: three results wait and the station blocks.
	s7WaitValue(t, ctx, c, fr.hs("State"), func(v any) bool { return v == int16(2) })
	if v := s7GoodValues(t, ctx, c, fr.hs("FaultNo"), fr.hs("Ready")); v[0] != int16(900) || v[1] != true {
		t.Fatalf("blocked FR shows FaultNo %v Ready %v, want 900 and true", v[0], v[1])
	}
	if n := len(p.Events("cycle")); n > 6 {
		t.Fatalf("%d results made with nobody acknowledging, want at most 3 per station", n)
	}

	// An acknowledgement of another counter moves nothing.
	shown := s7GoodValues(t, ctx, c, fr.hs("CycleCtr"))[0].(int32)
	if err := writeS7(ctx, c, fr.hs("AckCtr"), s7Value(shown+1)); err != nil {
		t.Fatal(err)
	}
	s7WaitScans(t, ctx, c, 2)
	if got := s7GoodValues(t, ctx, c, fr.hs("CycleCtr"))[0]; got != shown || len(p.Acked()["FR"]) != 0 {
		t.Fatalf("a wrong acknowledgement moved FR from %d to %v (acked %v)", shown, got, p.Acked())
	}

	results := map[string][]foreignResult{}
	for _, s := range []s7Station{fr, nr} {
		for range cars {
			r := ackForeignByHand(t, ctx, c, p, s)
			checkForeignTruth(t, s, r, p.TruthOf(t, s.name, r.counter))
			results[s.name] = append(results[s.name], r)
		}
	}
	s7WaitValue(t, ctx, c, fr.hs("Ready"), func(v any) bool { return v == false })
	s7WaitValue(t, ctx, c, nr.hs("State"), func(v any) bool { return v == int16(0) }) // idle: no car left
	if v := s7GoodValues(t, ctx, c, fr.hs("BodyNoPresent"), nr.hs("BodyNoPresent")); v[0] != int32(0) || v[1] != int32(0) {
		t.Errorf("BodyNoPresent after the last car: %v, want 0 at both", v)
	}

	seenVIN := map[string]bool{}
	var nok int
	for i := range cars {
		f, n := results["FR"][i], results["NR"][i]
		if f.counter != results["FR"][0].counter+int32(i) || n.counter != results["NR"][0].counter+int32(i) {
			t.Errorf("car %d: counters FR %d NR %d are not consecutive", i+1, f.counter, n.counter)
		}
		if err := vin.Validate(f.vin); err != nil || seenVIN[f.vin] {
			t.Errorf("car %d: FR VIN %q: %v (seen before %v)", i+1, f.vin, err, seenVIN[f.vin])
		}
		seenVIN[f.vin] = true
		if f.bodyNo != 4100001+int32(i) || n.bodyNo != f.bodyNo || n.model != f.model {
			t.Errorf("car %d: NR shows body %d model %d, FR showed %d model %d", i+1, n.bodyNo, n.model, f.bodyNo, f.model)
		}
		for _, r := range []foreignResult{f, n} {
			if r.verdict == 2 {
				nok++
			}
		}
	}
	if nok == 0 || nok == 2*cars {
		t.Errorf("%d of %d results NOK at --nok-rate 0.5 with this seed: want some of each", nok, 2*cars)
	}
}

func TestForeignPLCBadQuality(t *testing.T) {
	t.Parallel()
	p := testplc.StartForeign(t, "--stations", "FR:100:both,NR:200:body", "--cycle-ms", "50", "--paused")
	ctx := t.Context()
	c := foreignClient(t, ctx, p.Endpoint)
	nr := s7Station{"NR", 200, "body"}
	bad := nr.nut(2, "Nm")

	if err := p.CommandErr(t, map[string]any{"cmd": "bad-quality", "station": "NR", "node": `"DB201"."Nut"[9]."Nm"`, "status": "BadSensorFailure"}); err == nil {
		t.Error("bad-quality on a node that does not exist was taken")
	}
	if err := p.CommandErr(t, map[string]any{"cmd": "bad-quality", "station": "NR", "node": bad, "status": "GoodClamped"}); err == nil {
		t.Error("bad-quality with a Good status was taken")
	}
	p.Command(t, map[string]any{"cmd": "bad-quality", "station": "NR", "node": bad, "status": "BadSensorFailure", "cycles": 1})
	p.Command(t, map[string]any{"cmd": "bad-quality", "station": "NR", "node": "ns=3;s=" + nr.rs("ClampForce"), "status": "UncertainLastUsableValue"})
	p.Command(t, map[string]any{"cmd": "resume"})

	s7WaitValue(t, ctx, c, nr.hs("Ready"), func(v any) bool { return v == true })
	neighbours := []string{nr.nut(1, "Nm"), nr.nut(2, "Result"), nr.nut(3, "Nm"), nr.rs("Angle"), `"DB101"."Nut"[2]."Nm"`, nr.hs("CycleCtr")}
	dvs := readS7(t, ctx, c, append([]string{bad, nr.rs("ClampForce")}, neighbours...)...)
	if dvs[0].Status != ua.StatusBadSensorFailure || (dvs[0].Value != nil && dvs[0].Value.Value() != nil) {
		t.Errorf("%s reads %v %v while the injected result is shown, want BadSensorFailure and no value", bad, dvs[0].Status, dvs[0].Value)
	}
	clamp := dvs[1]
	for i, dv := range dvs[2:] {
		if dv.Status != ua.StatusOK {
			t.Errorf("%s reads %v: only %s was injected", neighbours[i], dv.Status, bad)
		}
	}
	counter := dvs[len(dvs)-1].Value.Value().(int32)
	tr := p.TruthOf(t, "NR", counter)
	if clamp.Status != ua.StatusUncertainLastUsableValue || clamp.Value == nil || clamp.Value.Value() != float32(tr.ClampForceKN) {
		t.Errorf("ClampForce reads %v %v, want UncertainLastUsableValue with the value %v", clamp.Status, clamp.Value, tr.ClampForceKN)
	}
	want := []testplc.ForeignBad{{Node: "ns=3;s=" + bad, Status: "BadSensorFailure"}, {Node: "ns=3;s=" + nr.rs("ClampForce"), Status: "UncertainLastUsableValue"}}
	if !slices.Equal(tr.Bad, want) {
		t.Errorf("truth of the injected result lists bad %v, want %v", tr.Bad, want)
	}

	if err := writeS7(ctx, c, nr.hs("AckCtr"), s7Value(counter)); err != nil {
		t.Fatal(err)
	}
	s7WaitValue(t, ctx, c, nr.hs("CycleCtr"), func(v any) bool { return v == counter+1 })
	if dv := readS7(t, ctx, c, bad)[0]; dv.Status != ua.StatusOK {
		t.Errorf("%s reads %v on the next result, want Good (the injection was for one result)", bad, dv.Status)
	}
	if tr := p.TruthOf(t, "NR", counter+1); len(tr.Bad) != 0 {
		t.Errorf("truth of the next result lists bad %v", tr.Bad)
	}
}

func TestForeignPLCIdentity(t *testing.T) {
	t.Parallel()
	p := testplc.StartForeign(t, "--stations", "FR:100:both,NR:200:body", "--cycle-ms", "50", "--paused")
	ctx := t.Context()
	c := foreignClient(t, ctx, p.Endpoint)
	fr, nr := s7Station{"FR", 100, "both"}, s7Station{"NR", 200, "body"}

	if err := p.CommandErr(t, map[string]any{"cmd": "bad-identity", "station": "NR", "fields": []string{"VIN"}}); err == nil {
		t.Error("a bad VIN at the body-number station NR was taken")
	}
	if err := p.CommandErr(t, map[string]any{"cmd": "fix-identity", "station": "FR"}); err == nil {
		t.Error("fix-identity with no bad identity held was taken")
	}
	p.Command(t, map[string]any{"cmd": "bad-identity", "station": "FR"})
	p.Command(t, map[string]any{"cmd": "resume"})

	s7WaitValue(t, ctx, c, fr.hs("Ready"), func(v any) bool { return v == true })
	r := readForeignResult(t, ctx, c, fr)
	tr := p.TruthOf(t, "FR", r.counter)
	if r.bodyNo != 0 || vin.Validate(r.vin) == nil || len(r.vin) != vin.Len {
		t.Errorf("injected result shows body %d VIN %q: want 0 and a 17-character VIN with a wrong check digit", r.bodyNo, r.vin)
	}
	if tr.BodyNo != 4100001 || vin.Validate(tr.VIN) != nil || tr.BadIdentity["BodyNo"] != float64(0) || tr.BadIdentity["VIN"] != r.vin {
		t.Errorf("truth %+v: want the right identity and the shown one in bad_identity", tr)
	}
	// Downstream the same car has its right body number.
	s7WaitValue(t, ctx, c, nr.hs("Ready"), func(v any) bool { return v == true })
	if got := s7GoodValues(t, ctx, c, nr.hs("BodyNo"))[0]; got != tr.BodyNo {
		t.Errorf("NR shows body %v for the first car, want %d", got, tr.BodyNo)
	}

	p.Command(t, map[string]any{"cmd": "fix-identity", "station": "FR"})
	v := s7GoodValues(t, ctx, c, fr.hs("BodyNo"), fr.hs("VIN"), fr.hs("CycleCtr"), fr.hs("Ready"))
	if v[0] != tr.BodyNo || v[1] != tr.VIN || v[2] != r.counter || v[3] != true {
		t.Errorf("after fix-identity FR shows %v, want body %d VIN %s on the same result %d, still ready", v, tr.BodyNo, tr.VIN, r.counter)
	}
}

func TestForeignPLCAckHangAndRefuse(t *testing.T) {
	t.Parallel()
	p := testplc.StartForeign(t, "--stations", "FR:100:vin", "--cycle-ms", "50")
	ctx := t.Context()
	c := foreignClient(t, ctx, p.Endpoint, opcua.RequestTimeout(5*time.Minute)) // the PLC, not the client, decides when the write ends
	fr := s7Station{"FR", 100, "vin"}
	s7WaitValue(t, ctx, c, fr.hs("Ready"), func(v any) bool { return v == true })
	counter := s7GoodValues(t, ctx, c, fr.hs("CycleCtr"))[0].(int32)

	p.Command(t, map[string]any{"cmd": "ack-hang", "station": "FR"})
	done := make(chan error, 1)
	go func() { done <- writeS7(ctx, c, fr.hs("AckCtr"), s7Value(counter)) }()
	p.WaitEvent(t, "ack-held", func(ev map[string]any) bool { return ev["value"] == float64(counter) })
	select {
	case err := <-done:
		t.Fatalf("the held write returned %v before ack-normal", err)
	default:
	}
	// Reads go on while the write hangs; the acknowledgement is not taken.
	s7WaitScans(t, ctx, c, 2)
	if v := s7GoodValues(t, ctx, c, fr.hs("CycleCtr"), fr.hs("Ready")); v[0] != counter || v[1] != true {
		t.Errorf("while the write hangs FR shows %v, want counter %d still ready", v, counter)
	}
	p.Command(t, map[string]any{"cmd": "ack-normal", "station": "FR"})
	if err := <-done; !errors.Is(err, ua.StatusBadTimeout) {
		t.Errorf("the held write ended with %v at ack-normal, want BadTimeout", err)
	}
	s7WaitScans(t, ctx, c, 2)
	if len(p.Acked()["FR"]) != 0 {
		t.Errorf("the held write was applied: acked %v", p.Acked())
	}

	p.Command(t, map[string]any{"cmd": "ack-refuse", "station": "FR"})
	if err := writeS7(ctx, c, fr.hs("AckCtr"), s7Value(counter)); !errors.Is(err, ua.StatusBadUserAccessDenied) {
		t.Errorf("write under ack-refuse: %v, want BadUserAccessDenied", err)
	}
	s7WaitScans(t, ctx, c, 2)
	if v := s7GoodValues(t, ctx, c, fr.hs("AckCtr"), fr.hs("CycleCtr")); v[0] == counter || v[1] != counter {
		t.Errorf("a refused write changed AckCtr: AckCtr %v CycleCtr %v", v[0], v[1])
	}
	p.Command(t, map[string]any{"cmd": "ack-normal", "station": "FR"})
	if err := writeS7(ctx, c, fr.hs("AckCtr"), s7Value(counter)); err != nil {
		t.Fatalf("write after ack-normal: %v", err)
	}
	p.WaitEvent(t, "acked", func(ev map[string]any) bool { return ev["counter"] == float64(counter) })
	if got := p.Acked()["FR"]; !slices.Equal(got, []int{int(counter)}) {
		t.Errorf("acked %v, want only %d", got, counter)
	}
}

func TestForeignPLCStates(t *testing.T) {
	t.Parallel()
	p := testplc.StartForeign(t, "--stations", "FR:100:both,NR:200:body", "--cycle-ms", "50", "--paused")
	ctx := t.Context()
	c := foreignClient(t, ctx, p.Endpoint)
	fr, nr := s7Station{"FR", 100, "both"}, s7Station{"NR", 200, "body"}
	for _, step := range []struct {
		name         string
		cmd          map[string]any
		st           s7Station
		state, fault int16
	}{
		{"paused is idle", nil, fr, 0, 0},
		{"no car is starved", map[string]any{"cmd": "resume", "station": "NR"}, nr, 3, 0},
		{"unacknowledged results block", map[string]any{"cmd": "resume", "station": "FR"}, fr, 2, 900},
		{"e-stop", map[string]any{"cmd": "fault", "station": "FR", "code": 17}, fr, 4, 17},
		{"nutrunner fault", map[string]any{"cmd": "fault", "station": "FR", "code": 23}, fr, 4, 23},
		{"fault cleared", map[string]any{"cmd": "fault", "station": "FR", "code": 0}, fr, 2, 900},
		{"maintenance", map[string]any{"cmd": "maintenance", "station": "FR", "on": true}, fr, 5, 0},
		{"maintenance over", map[string]any{"cmd": "maintenance", "station": "FR", "on": false}, fr, 2, 900},
	} {
		if step.cmd != nil {
			p.Command(t, step.cmd)
		}
		s7WaitValue(t, ctx, c, step.st.hs("State"), func(v any) bool { return v == step.state })
		if got := s7GoodValues(t, ctx, c, step.st.hs("FaultNo"))[0]; got != step.fault {
			t.Errorf("%s: %s FaultNo %v, want %d", step.name, step.st.name, got, step.fault)
		}
	}
	// FR's results are acknowledged, NR's are not: FR makes car 4, which NR
	// takes and holds, and then cannot pass car 5 on.
	for range 3 {
		ackForeignByHand(t, ctx, c, p, fr)
	}
	s7WaitValue(t, ctx, c, fr.hs("FaultNo"), func(v any) bool { return v == int16(0) })
	s7WaitValue(t, ctx, c, fr.hs("State"), func(v any) bool { return v == int16(2) })
	if v := s7GoodValues(t, ctx, c, fr.hs("State"), fr.hs("BodyNoPresent"), nr.hs("BodyNoPresent"), nr.hs("State")); v[0] != int16(2) || s7GoodValues(t, ctx, c, fr.hs("FaultNo"))[0] != int16(0) || v[1] != int32(4100005) || v[2] != int32(4100004) || v[3] != int16(2) {
		t.Errorf("FR held by NR: FR State %v BodyNoPresent %v, NR BodyNoPresent %v State %v; want 2, 4100005, 4100004, 2", v[0], v[1], v[2], v[3])
	}

	// Nothing was made while paused: the first result comes after FR's resume.
	var resumed bool
	for _, ev := range p.Events("") {
		if ev["event"] == "done" && ev["cmd"] == "resume" && ev["station"] == "FR" {
			resumed = true
		}
		if ev["event"] == "cycle" && !resumed {
			t.Fatalf("result %v made before FR was resumed", ev)
		}
	}
	if err := p.CommandErr(t, map[string]any{"cmd": "fault", "station": "XX", "code": 17}); err == nil || !strings.Contains(err.Error(), "XX") {
		t.Errorf("a fault at an unknown station: %v, want an error naming it", err)
	}
}
