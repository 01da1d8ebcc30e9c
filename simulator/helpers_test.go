package simulator

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger logs warnings and errors to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startPlant makes and starts a plant and stops it when the test ends.
func startPlant(t *testing.T, cfg Config) *Plant {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return p
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not readiness
	}
}

// connect connects a gopcua client to a station endpoint.
func connect(t *testing.T, ctx context.Context, endpoint string) *opcua.Client {
	t.Helper()
	c, err := dial(ctx, endpoint)
	if c != nil {
		t.Cleanup(func() { c.Close(context.WithoutCancel(ctx)) })
	}
	if err != nil {
		t.Fatalf("connect %s: %v", endpoint, err)
	}
	return c
}

// dial connects a client; it returns the client even on error, for Close.
func dial(ctx context.Context, endpoint string) (*opcua.Client, error) {
	c, err := opcua.NewClient(endpoint, opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
	if err != nil {
		return nil, err
	}
	return c, c.Connect(ctx)
}

// readValues reads the Value attribute of the given node ids in one Read.
func readValues(ctx context.Context, c *opcua.Client, ids []string) ([]*ua.DataValue, error) {
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth}
	for _, s := range ids {
		nid, err := ua.ParseNodeID(s)
		if err != nil {
			return nil, err
		}
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: nid, AttributeID: ua.AttributeIDValue})
	}
	resp, err := c.Read(ctx, req)
	if err != nil {
		return nil, err
	}
	if len(resp.Results) != len(ids) {
		return nil, fmt.Errorf("%d results for %d nodes", len(resp.Results), len(ids))
	}
	for i, dv := range resp.Results {
		if dv.Status != ua.StatusOK {
			return nil, fmt.Errorf("read %s: %w", ids[i], dv.Status)
		}
	}
	return resp.Results, nil
}

// writeAck writes AckCounter = v.
func writeAck(ctx context.Context, c *opcua.Client, node string, v any) (ua.StatusCode, error) {
	nid, err := ua.ParseNodeID(node)
	if err != nil {
		return 0, err
	}
	resp, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID: nid, AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)},
	}}})
	if err != nil {
		return 0, err
	}
	return resp.Results[0], nil
}

// readResult is a result block as a client read it.
type readResult struct {
	Counter   uint32
	VIN       string
	Model     string
	Variant   string
	Colour    string
	Status    string
	Start     int64
	End       int64
	Parts     []Part
	Joints    []Joint
	Tests     []Test
	Heartbeat int32
}

// blockNodes returns the node ids an acknowledging client reads in one
// Read: DataReady, CycleCounter and the result block.
func blockNodes(si StationInfo) []string {
	ids := []string{si.Nodes[TagDataReady], si.Nodes[TagCycleCounter]}
	for _, ts := range blockTags(si.Parts, si.Joints, si.Tests) {
		ids = append(ids, si.Nodes[ts.Name])
	}
	return ids
}

// decodeBlock turns the values read for blockNodes into a readResult,
// checking each value's Go type.
func decodeBlock(si StationInfo, dvs []*ua.DataValue) (ready bool, r readResult, err error) {
	k := 0
	next := func() any { v := dvs[k].Value.Value(); k++; return v }
	str := func() string {
		v, ok := next().(string)
		if !ok && err == nil {
			err = fmt.Errorf("station %s: node %d: %T, want string", si.ID, k-1, dvs[k-1].Value.Value())
		}
		return v
	}
	f64 := func() float64 {
		v, ok := next().(float64)
		if !ok && err == nil {
			err = fmt.Errorf("station %s: node %d: %T, want float64", si.ID, k-1, dvs[k-1].Value.Value())
		}
		return v
	}
	boolean := func() bool {
		v, ok := next().(bool)
		if !ok && err == nil {
			err = fmt.Errorf("station %s: node %d: %T, want bool", si.ID, k-1, dvs[k-1].Value.Value())
		}
		return v
	}
	i64 := func() int64 {
		v, ok := next().(int64)
		if !ok && err == nil {
			err = fmt.Errorf("station %s: node %d: %T, want int64", si.ID, k-1, dvs[k-1].Value.Value())
		}
		return v
	}
	ready = boolean()
	c, ok := next().(uint32)
	if !ok {
		return false, r, fmt.Errorf("station %s: CycleCounter is %T, want uint32", si.ID, dvs[1].Value.Value())
	}
	r.Counter = c
	r.VIN, r.Model, r.Variant, r.Colour, r.Status = str(), str(), str(), str(), str()
	r.Start, r.End = i64(), i64()
	for n := 0; n < si.Parts; n++ {
		p := Part{PartNumber: str(), Serial: str(), Lot: str(), Supplier: str()}
		if p.PartNumber != "" {
			r.Parts = append(r.Parts, p)
		}
	}
	for n := 0; n < si.Joints; n++ {
		j := Joint{Name: str(), Tool: str(), TorqueNm: f64(), AngleDeg: f64(), OK: boolean()}
		if j.Name != "" {
			r.Joints = append(r.Joints, j)
		}
	}
	for n := 0; n < si.Tests; n++ {
		tt := Test{Name: str(), Unit: str(), Value: f64(), Low: f64(), High: f64(), OK: boolean()}
		if tt.Name != "" {
			r.Tests = append(r.Tests, tt)
		}
	}
	return ready, r, err
}

// acker is a small MES stand-in for one station: it polls DataReady, reads
// the result block in one Read and acknowledges it.
type acker struct {
	si StationInfo
	c  *opcua.Client

	mu      sync.Mutex
	results []readResult
	err     error
}

// startAckers connects an acker to every station and runs them until the
// returned stop function is called.
func startAckers(t *testing.T, p *Plant) (ackers map[string]*acker, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	ackers = make(map[string]*acker)
	sts := p.Stations()
	clients := make([]*opcua.Client, len(sts))
	errs := make([]error, len(sts))
	var cwg sync.WaitGroup
	for i, si := range sts { // connect in parallel: a connect is slow under -race
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			clients[i], errs[i] = dial(ctx, si.Endpoint)
		}()
	}
	cwg.Wait()
	for i, c := range clients {
		if c != nil {
			t.Cleanup(func() { c.Close(context.WithoutCancel(ctx)) })
		}
		if errs[i] != nil {
			cancel()
			t.Fatalf("connect %s: %v", sts[i].Endpoint, errs[i])
		}
	}
	for i, si := range sts {
		a := &acker{si: si, c: clients[i]}
		ackers[si.ID] = a
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.run(ctx)
		}()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			for _, a := range ackers {
				a.c.Close(context.WithoutCancel(ctx))
				if err := a.error(); err != nil {
					t.Errorf("acker %s: %v", a.si.ID, err)
				}
			}
		})
	}
	t.Cleanup(stop)
	return ackers, stop
}

func (a *acker) error() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *acker) got() []readResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]readResult(nil), a.results...)
}

func (a *acker) fail(err error) {
	a.mu.Lock()
	if a.err == nil {
		a.err = err
	}
	a.mu.Unlock()
}

func (a *acker) run(ctx context.Context) {
	poll := []string{a.si.Nodes[TagDataReady], a.si.Nodes[TagCycleCounter]}
	block := blockNodes(a.si)
	var last uint32
	t := time.NewTicker(3 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		dvs, err := readValues(ctx, a.c, poll)
		if err != nil {
			if ctx.Err() == nil {
				a.fail(err)
			}
			return
		}
		if !dvs[0].Value.Bool() || uint32(dvs[1].Value.Uint()) == last {
			continue
		}
		dvs, err = readValues(ctx, a.c, block)
		if err != nil {
			if ctx.Err() == nil {
				a.fail(err)
			}
			return
		}
		ready, r, err := decodeBlock(a.si, dvs)
		if err != nil {
			a.fail(err)
			return
		}
		if !ready || r.Counter == last {
			continue
		}
		// Make it "durable", then acknowledge.
		a.mu.Lock()
		a.results = append(a.results, r)
		a.mu.Unlock()
		st, err := writeAck(ctx, a.c, a.si.Nodes[TagAckCounter], r.Counter)
		if err != nil {
			if ctx.Err() == nil {
				a.fail(err)
			}
			return
		}
		if st != ua.StatusOK {
			a.fail(fmt.Errorf("ack %d: %v", r.Counter, st))
			return
		}
		last = r.Counter
	}
}

// readTruth reads the truth file.
func readTruth(t *testing.T, path string) []TruthCar {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cars []TruthCar
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c TruthCar
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("truth line %d: %v: %s", len(cars)+1, err, sc.Bytes())
		}
		cars = append(cars, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cars
}
