package stations_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nodePLCDir holds the node-opcua test PLC (server.js) and its lockfile.
const nodePLCDir = "testdata/opcua"

// nodePLC is the node-opcua test PLC (testdata/opcua/server.js) running as
// a child process: an OPC UA server independent of gopcua, with secure
// channels, users and a MaxNodesPerRead limit.
type nodePLC struct {
	Endpoint string
	cmd      *exec.Cmd
	stdin    *os.File
	out, err string // files the server's stdout and stderr go to
}

var (
	npmOnce sync.Once
	npmErr  error
)

// needNodePLC skips the test when node-opcua cannot run here: node is
// missing, or node_modules is absent and `npm ci` cannot install it.
func needNodePLC(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the interop tests against node-opcua need Node.js 20 or later")
	}
	npmOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(nodePLCDir, "node_modules", "node-opcua")); err == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			npmErr = err
			return
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = nodePLCDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			npmErr = &installError{err: err, out: string(out)}
		}
	})
	if npmErr != nil {
		t.Skipf("node-opcua is not installed in stations/%s and `npm ci` there failed: %v", nodePLCDir, npmErr)
	}
}

type installError struct {
	err error
	out string
}

func (e *installError) Error() string { return e.err.Error() + ": " + e.out }

// startNodePLC starts server.js with args (users in PLC_USERS) on a free
// port, waits until it listens and stops it at the end of the test.
func startNodePLC(t *testing.T, users string, args ...string) *nodePLC {
	t.Helper()
	needNodePLC(t)
	dir := t.TempDir()
	p := &nodePLC{out: filepath.Join(dir, "stdout"), err: filepath.Join(dir, "stderr")}
	stdout, err := os.Create(p.out)
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(p.err)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	// The server stops when its stdin closes: if this test process dies,
	// so does the server.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p.stdin = w
	p.cmd = exec.Command("node", append([]string{"server.js", "--port", "0", "--pki", filepath.Join(dir, "pki")}, args...)...)
	p.cmd.Dir = nodePLCDir
	p.cmd.Env = append(os.Environ(), "PLC_USERS="+users)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = r, stdout, stderr
	if err := p.cmd.Start(); err != nil {
		w.Close()
		t.Fatalf("start node-opcua test PLC: %v", err)
	}
	t.Cleanup(p.stop)

	deadline := time.Now().Add(90 * time.Second)
	for p.Endpoint == "" {
		if ev, ok := p.event("ready"); ok {
			p.Endpoint = ev["endpoint"].(string)
			break
		}
		if time.Now().After(deadline) || processGone(p.cmd.Process.Pid) {
			b, _ := os.ReadFile(p.err)
			t.Fatalf("node-opcua test PLC did not start:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// processGone reports whether the child pid has exited (it is a zombie or
// gone).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] == "Z"
}

// events returns the JSON events the server printed so far.
func (p *nodePLC) events() []map[string]any {
	b, _ := os.ReadFile(p.out)
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(`{"event"`)) {
			continue // node-opcua's own warnings
		}
		var ev map[string]any
		if json.Unmarshal(line, &ev) == nil {
			out = append(out, ev)
		}
	}
	return out
}

func (p *nodePLC) event(name string) (map[string]any, bool) {
	for _, ev := range p.events() {
		if ev["event"] == name {
			return ev, true
		}
	}
	return nil, false
}

// acked returns the counters the server saw acknowledged, by station.
func (p *nodePLC) acked() map[string][]int {
	out := map[string][]int{}
	for _, ev := range p.events() {
		if ev["event"] == "acked" {
			st := ev["station"].(string)
			out[st] = append(out[st], int(ev["counter"].(float64)))
		}
	}
	return out
}

// stop ends the server: its stdin closes and it gets SIGTERM; it is
// killed if it has not exited within 10 s.
func (p *nodePLC) stop() {
	p.stdin.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.AfterFunc(10*time.Second, func() { _ = p.cmd.Process.Kill() })
	_ = p.cmd.Wait()
	timer.Stop()
}
