package stations_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/stations"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The interop tests run keiline's OPC UA layer against node-opcua, an
// independent implementation with secure channels (gopcua's server has
// none): one server, several stations, each reached with other security.

const (
	interopPassword = "correct-horse-battery"
	interopCycles   = 4
	interopMaxRead  = 20 // the server's MaxNodesPerRead; a station has 52 tags
)

// interopStation is how the agent reaches one station of the node-opcua PLC.
type interopStation struct {
	id, policy, mode string
	user             line.UserIdentity
}

var interopStations = []interopStation{
	{id: "T01"}, // security None, anonymous
	{id: "T02", policy: line.PolicyBasic256Sha256, mode: line.ModeSign},
	{id: "T03", policy: line.PolicyBasic256Sha256, mode: line.ModeSignAndEncrypt,
		user: line.UserIdentity{Type: line.UserUsername, Name: "mes", PasswordEnv: "T03_PLC_PASSWORD"}},
	{id: "T04", policy: line.PolicyAes128Sha256RsaOaep, mode: line.ModeSign,
		user: line.UserIdentity{Type: line.UserUsername, Name: "mes", PasswordFile: "t04.pass"}},
	{id: "T05", policy: line.PolicyAes128Sha256RsaOaep, mode: line.ModeSignAndEncrypt},
	{id: "T06", policy: line.PolicyAes256Sha256RsaPss, mode: line.ModeSign,
		user: line.UserIdentity{Type: line.UserCertificate}},
	{id: "T07", policy: line.PolicyAes256Sha256RsaPss, mode: line.ModeSignAndEncrypt,
		user: line.UserIdentity{Type: line.UserUsername, Name: "mes", PasswordEnv: "T07_PLC_PASSWORD"}},
}

// nodeStation maps station id's tags to the node-opcua PLC's nodes.
func nodeStation(id, endpoint string) line.Station {
	st := line.Station{ID: id, Endpoint: endpoint, Parts: 2, Joints: 3, Tests: 2, Nodes: map[string]line.Tag{}}
	for _, tag := range st.Tags() {
		st.Nodes[tag] = line.NodeTag("ns=1;s=" + id + "." + tag)
	}
	st.Nodes["Result.BodyNo"] = line.AbsentTag() // the PLC identifies cars by VIN
	return st
}

// interopLine is a line config of the given stations of the node-opcua
// PLC, with its PKI in dir and passwords resolved from env.
func interopLine(t *testing.T, endpoint, dir string, sts []interopStation, env map[string]string) *line.Config {
	t.Helper()
	lc := &line.Config{Version: 1, Plant: "US1", Line: "L1", PollInterval: 20 * time.Millisecond}
	lc.SetDir(dir)
	for _, is := range sts {
		st := nodeStation(is.id, endpoint)
		st.SecurityPolicy, st.SecurityMode, st.User = is.policy, is.mode, is.user
		lc.Stations = append(lc.Stations, st)
	}
	if err := lc.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := lc.ResolvePasswords(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if _, err := stations.PKIOf(lc).EnsureCertificate(); err != nil {
		t.Fatal(err)
	}
	return lc
}

// runAgent runs an agent for line, publishing to js, until the test ends
// or stop is called.
func runAgent(t *testing.T, lc *line.Config, js jetstream.JetStream, logs *syncBuffer) (stop func()) {
	t.Helper()
	agent, err := stations.NewAgent(stations.AgentConfig{Line: lc, Publisher: streams.NewPublisher(js),
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// natsStream starts an embedded nats-server with the keiline stream.
func natsStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	b, err := broker.Start(broker.Config{StoreDir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	nc, err := nats.Connect(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	return js
}

// streamCycles returns the cycle events in the stream, by station.
func streamCycles(t *testing.T, js jetstream.JetStream) map[string][]*event.Event {
	t.Helper()
	s, err := js.Stream(t.Context(), event.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]*event.Event{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := event.Decode(m.Data)
		if err != nil {
			t.Fatalf("stream message %d: %v", seq, err)
		}
		if ev.Kind == event.KindCycle {
			out[ev.Station] = append(out[ev.Station], ev)
		}
	}
	return out
}

func TestInteropNodeOPCUA(t *testing.T) {
	var ids []string
	for _, is := range interopStations {
		ids = append(ids, is.id)
	}
	ids = append(ids, "T08") // polled by no agent: it blocks
	plc := startNodePLC(t, "mes:"+interopPassword, "--stations", strings.Join(ids, ","), "--parts", "2", "--joints", "3", "--tests", "2",
		"--cycle-ms", "100", "--cycles", fmt.Sprint(interopCycles), "--max-unacked", "3", "--max-nodes-per-read", fmt.Sprint(interopMaxRead))

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t04.pass"), []byte(interopPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"T03_PLC_PASSWORD": interopPassword, "T07_PLC_PASSWORD": interopPassword}
	lc := interopLine(t, plc.Endpoint, dir, interopStations, env)
	pki := stations.PKIOf(lc)

	t.Run("an unknown server certificate is refused and saved for approval", func(t *testing.T) {
		t02, _ := lc.Station("T02")
		_, err := stations.DialPLC(t.Context(), stations.ConnectionOf(lc, t02))
		if !errors.Is(err, stations.ErrCertificateUntrusted) {
			t.Fatalf("DialPLC with an empty trust list = %v, want ErrCertificateUntrusted", err)
		}
		rejected, _ := stations.ListCertificates(pki.RejectedDir)
		if len(rejected) != 1 {
			t.Fatalf("%d certificates in %s, want the PLC's", len(rejected), pki.RejectedDir)
		}
		// The hint is a complete command.
		want := fmt.Sprintf("station T02: plc %s: server certificate %q (thumbprint %s) is not trusted; it was saved as %s: if it is this PLC's certificate, move it to %s (or run `keiline plc cert --pki %s --trust %s`)",
			plc.Endpoint, rejected[0].Subject, rejected[0].Thumbprint, rejected[0].File, pki.TrustedDir, filepath.Dir(pki.TrustedDir), rejected[0].Thumbprint)
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error:\n %s\nwant it to start with:\n %s", err, want)
		}
		// The integrator approves it.
		if _, err := pki.Trust(rejected[0].Thumbprint); err != nil {
			t.Fatal(err)
		}
	})

	js := natsStream(t)
	t.Run("the agent runs every station end to end, secure and insecure", func(t *testing.T) {
		logs := &syncBuffer{}
		stop := runAgent(t, lc, js, logs)
		deadline := time.Now().Add(90 * time.Second)
		for {
			done := 0
			for _, st := range interopStations {
				if len(plc.Acked()[st.id]) == interopCycles {
					done++
				}
			}
			if done == len(interopStations) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("PLC acknowledged %v, want %d cycles per station\nagent log:\n%s", plc.Acked(), interopCycles, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		cycles := streamCycles(t, js)
		for _, is := range interopStations {
			evs := cycles[is.id]
			var counters []int
			for _, ev := range evs {
				c, err := ev.Cycle()
				if err != nil {
					t.Fatal(err)
				}
				counters = append(counters, int(c.Counter))
				if err := ev.Validate(); err != nil {
					t.Errorf("station %s: event %s: %v", is.id, ev.ID, err)
				}
				if len(c.Parts) != 2 || len(c.Joints) != 3 || len(c.Tests) != 2 || len(c.Bad) != 0 {
					t.Errorf("station %s: event %s: %d parts, %d joints, %d tests, bad %v", is.id, ev.ID, len(c.Parts), len(c.Joints), len(c.Tests), c.Bad)
					continue
				}
				if want := 101 + float64(c.Counter)/100; c.Joints[0].TorqueNm == nil || *c.Joints[0].TorqueNm != want || c.Parts[1].Serial != fmt.Sprintf("S%d-2", c.Counter) {
					t.Errorf("station %s: cycle %d: torque %v, serial %q; want %v, S%d-2", is.id, c.Counter, event.Num(c.Joints[0].TorqueNm, "%g", ""), c.Parts[1].Serial, want, c.Counter)
				}
			}
			slices.Sort(counters)
			if !slices.Equal(counters, []int{1, 2, 3, 4}) {
				t.Errorf("station %s (%s/%s, user %s): cycles %v in the stream, want 1-4 once each", is.id, is.policy, is.mode, is.user.Type, counters)
			}
			if !slices.Equal(plc.Acked()[is.id], []int{1, 2, 3, 4}) {
				t.Errorf("station %s: PLC saw acknowledgements %v", is.id, plc.Acked()[is.id])
			}
			if want := fmt.Sprintf("station=%s endpoint=%s max_nodes_per_read=%d", is.id, plc.Endpoint, interopMaxRead); !strings.Contains(logs.String(), want) {
				t.Errorf("agent log does not say %q:\n%s", want, logs.String())
			}
		}
		if strings.Contains(logs.String(), interopPassword) {
			t.Errorf("agent log shows the password:\n%s", logs.String())
		}
	})

	t.Run("reads are split by the server's MaxNodesPerRead", func(t *testing.T) {
		t01, _ := lc.Station("T01")
		var nodes []*ua.NodeID
		for _, tag := range t01.Tags() {
			if t01.Nodes[tag].IsRead() {
				nodes = append(nodes, ua.MustParseNodeID(t01.Node(tag)))
			}
		}
		greedy, err := stations.DialPLC(t.Context(), stations.Connection{Endpoint: plc.Endpoint, MaxNodesPerRead: 100})
		if err != nil {
			t.Fatal(err)
		}
		defer greedy.Close(t.Context())
		if _, err := greedy.Read(t.Context(), nodes); !errors.Is(err, ua.StatusBadTooManyOperations) {
			t.Errorf("a Read of %d nodes ignoring the limit = %v; want BadTooManyOperations (the server enforces its limit)", len(nodes), err)
		}
		p, err := stations.DialPLC(t.Context(), stations.Connection{Endpoint: plc.Endpoint})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(t.Context())
		if p.MaxNodesPerRead() != interopMaxRead {
			t.Errorf("MaxNodesPerRead = %d, want the server's %d", p.MaxNodesPerRead(), interopMaxRead)
		}
		dvs, err := p.Read(t.Context(), nodes)
		if err != nil || len(dvs) != len(nodes) {
			t.Fatalf("Read = %d values, %v", len(dvs), err)
		}
		for i, dv := range dvs {
			if dv.Status != ua.StatusOK {
				t.Errorf("node %s: %s", nodes[i], dv.Status)
			}
		}
	})

	t.Run("check names each mistake once, with station and node or endpoint", func(t *testing.T) {
		// Station T08 with a wrong node id, two swapped types and
		// AckCounter on a read-only node; T03 with a wrong password.
		bad := interopLine(t, plc.Endpoint, dir, []interopStation{interopStations[2], {id: "T08"}},
			map[string]string{"T03_PLC_PASSWORD": "wrong-password"})
		t08, _ := bad.Station("T08")
		swap := func(a, b string) { t08.Nodes[a], t08.Nodes[b] = t08.Nodes[b], t08.Nodes[a] }
		t08.Nodes["Result.Colour"] = line.NodeTag("ns=1;s=T08.Result.Color")
		swap("Joint1.TorqueNm", "Joint1.Name")
		swap("AckCounter", "CycleCounter")
		// Station T02 with a PKI that trusts nothing yet.
		untrusted := interopLine(t, plc.Endpoint, t.TempDir(), interopStations[1:2], nil)

		probs, err := stations.CheckLine(t.Context(), bad, nil)
		if err != nil {
			t.Fatal(err)
		}
		more, err := stations.CheckLine(t.Context(), untrusted, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range append(probs, more...) {
			got = append(got, p.String())
		}
		ep := plc.Endpoint
		want := []string{
			"station T03: plc " + ep + ": the PLC refused the user (BadUserAccessDenied), user \"mes\": check the user name and the password (from environment variable T03_PLC_PASSWORD)",
			"station T08: tag AckCounter: node ns=1;s=T08.CycleCounter: not writable (user access level: read); the agent writes AckCounter to acknowledge a cycle",
			"station T08: tag Result.Colour: node ns=1;s=T08.Result.Color: does not exist (BadNodeIDUnknown)",
			"station T08: tag Joint1.Name: node ns=1;s=T08.Joint1.TorqueNm: data type Double, want String",
			"station T08: tag Joint1.TorqueNm: node ns=1;s=T08.Joint1.Name: data type String, want a number",
			"station T02: plc " + ep + ": server certificate ",
		}
		if len(got) != len(want) {
			t.Errorf("%d problems, want %d (one per mistake):\n%s", len(got), len(want), strings.Join(got, "\n"))
		}
		for _, w := range want {
			if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
				t.Errorf("no problem starts with %q; got:\n%s", w, strings.Join(got, "\n"))
			}
		}
		if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, "is not trusted; it was saved as") }) {
			t.Errorf("the untrusted certificate is not reported as such:\n%s", strings.Join(got, "\n"))
		}
		if strings.Contains(strings.Join(got, "\n"), "wrong-password") {
			t.Errorf("a problem shows the password")
		}
	})

	t.Run("the agent logs a refused user and an untrusted certificate once", func(t *testing.T) {
		wrong := interopLine(t, plc.Endpoint, dir, interopStations[6:7], map[string]string{"T07_PLC_PASSWORD": "wrong-password"})
		untrusted := interopLine(t, plc.Endpoint, t.TempDir(), interopStations[4:5], nil)
		logs := &syncBuffer{}
		stop1 := runAgent(t, wrong, js, logs)
		stop2 := runAgent(t, untrusted, js, logs)
		deadline := time.Now().Add(30 * time.Second)
		// Wait for a few reconnect attempts (100, 200, 400, 800 ms apart).
		for strings.Count(logs.String(), "PLC unreachable") < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(1600 * time.Millisecond)
		stop1()
		stop2()
		out := logs.String()
		for _, want := range []string{
			"station=T07 endpoint=" + plc.Endpoint + " err=\"station T07: plc " + plc.Endpoint + ": the PLC refused the user (BadUserAccessDenied), user \\\"mes\\\": check the user name and the password (from environment variable T07_PLC_PASSWORD)",
			"station=T05 endpoint=" + plc.Endpoint + " err=\"station T05: plc " + plc.Endpoint + ": server certificate ",
		} {
			if n := strings.Count(out, want); n != 1 {
				t.Errorf("agent log says %q %d times, want once:\n%s", want, n, out)
			}
		}
		if strings.Contains(out, "wrong-password") {
			t.Errorf("agent log shows the password:\n%s", out)
		}
	})

	t.Run("browse finds the tags in the PLC's folders", func(t *testing.T) {
		p, err := stations.DialPLC(t.Context(), stations.Connection{Endpoint: plc.Endpoint})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(t.Context())
		res, err := stations.Browse(t.Context(), p, stations.BrowseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := stations.PrintBrowse(&out, res); err != nil {
			t.Fatal(err)
		}
		for _, re := range []string{
			`ns=1;s=T01\.Result\.Vin +T01/Result/Vin +String +read\n`,
			`ns=1;s=T05\.AckCounter +T05/AckCounter +UInt32 +read/write\n`,
			`ns=1;s=T02\.Joint3\.AngleDeg +T02/Joint3/AngleDeg +Double +read\n`,
			`ns=1;s=T01\.Diag\.Firmware +T01/Diag/Firmware +String +read\n`,
		} {
			if !matches(re, out.String()) {
				t.Errorf("browse output does not match %q:\n%s", re, out.String())
			}
		}
		st, ms := stations.MatchStation(res, "T04", plc.Endpoint)
		want := nodeStation("T04", plc.Endpoint)
		if !mapsEqual(st.Nodes, want.Nodes) || st.Parts != 2 || st.Joints != 3 || st.Tests != 2 {
			t.Errorf("matched station %+v, want %+v", st, want)
		}
		for _, m := range ms {
			if m.Problem != "" {
				t.Errorf("tag %s: %s", m.Tag, m.Problem)
			}
		}
	})

	t.Run("watch decodes a blocked station", func(t *testing.T) {
		t08 := nodeStation("T08", plc.Endpoint)
		w := stations.NewWatcher(lc, &t08, time.Second)
		defer w.Close(t.Context())
		f := w.Frame(t.Context(), time.Now())
		screen := stations.RenderWatch(f)
		if f.Handshake != stations.HandshakeBlocked || !strings.Contains(screen, "handshake  BLOCKED  the PLC holds its car") ||
			!strings.Contains(screen, `state      blocked  fault 900 "MES not acknowledging"`) {
			t.Errorf("watch of the unacknowledged station:\n%s", screen)
		}
	})
}
