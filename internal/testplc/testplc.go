// Package testplc runs keiline's node-opcua test PLCs
// (stations/testdata/opcua) as child processes, for the tests of any
// package: server.js, a PLC shaped like keiline's handshake with secure
// channels and users, and foreign.js, a PLC that looks like a Siemens
// S7-1500 with an integrator's data blocks (FOREIGN.md is its data sheet).
// Only tests import it.
package testplc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Limits of the helpers; guards for polls, never reached when all is well.
const (
	// StartLimit bounds a PLC's start (node-opcua makes its certificate).
	StartLimit = 90 * time.Second
	// WaitLimit bounds waiting for one event.
	WaitLimit = 30 * time.Second
)

// Dir is the directory of the test PLCs and their lockfile.
var Dir = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "stations", "testdata", "opcua")
}()

var (
	npmOnce sync.Once
	npmErr  error
)

// Need skips the test when node-opcua cannot run here: node is missing, or
// node_modules is absent and `npm ci` cannot install it.
func Need(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the tests against node-opcua PLCs need Node.js 20 or later")
	}
	npmOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(Dir, "node_modules", "node-opcua")); err == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			npmErr = err
			return
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = errors.New(err.Error() + ": " + string(out))
		}
	})
	if npmErr != nil {
		t.Skipf("node-opcua is not installed in %s and `npm ci` there failed: %v", Dir, npmErr)
	}
}

// PLC is a test PLC running as a child process.
type PLC struct {
	Endpoint string
	// Dir is the PLC's own directory (its PKI, its stdout and stderr).
	Dir string

	cmd      *exec.Cmd
	stdin    *os.File
	out, err string // files the server's stdout and stderr go to

	mu     sync.Mutex // serialises commands on stdin
	nextID int
}

// Start starts script (server.js or foreign.js) with args on a free port,
// with env added to the environment, waits until it listens and stops it
// at the end of the test. The PLC also stops when its stdin closes, so it
// never outlives the test process.
func Start(t testing.TB, script string, env []string, args ...string) *PLC {
	t.Helper()
	Need(t)
	dir := t.TempDir()
	p := &PLC{Dir: dir, out: filepath.Join(dir, "stdout"), err: filepath.Join(dir, "stderr")}
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
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p.stdin = w
	p.cmd = exec.Command("node", append([]string{script, "--port", "0", "--pki", filepath.Join(dir, "pki")}, args...)...)
	p.cmd.Dir = Dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = r, stdout, stderr
	if err := p.cmd.Start(); err != nil {
		w.Close()
		t.Fatalf("start test PLC %s: %v", script, err)
	}
	t.Cleanup(p.Stop)
	deadline := time.Now().Add(StartLimit)
	for {
		if ev, ok := p.Event("ready"); ok {
			p.Endpoint = ev["endpoint"].(string)
			return p
		}
		if time.Now().After(deadline) || p.Gone() {
			t.Fatalf("test PLC %s did not start:\n%s", script, p.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Gone reports whether the PLC process has exited (it is a zombie or gone).
func (p *PLC) Gone() bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] == "Z"
}

// Stderr is what the PLC wrote to stderr so far.
func (p *PLC) Stderr() string {
	b, _ := os.ReadFile(p.err)
	return string(b)
}

// Events returns the JSON events named name the PLC printed so far (all of
// them with ""); node-opcua's own lines are skipped.
func (p *PLC) Events(name string) []map[string]any {
	b, _ := os.ReadFile(p.out)
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(`{"event"`)) {
			continue
		}
		var ev map[string]any
		if json.Unmarshal(line, &ev) == nil && (name == "" || ev["event"] == name) {
			out = append(out, ev)
		}
	}
	return out
}

// Event returns the first event named name, if any.
func (p *PLC) Event(name string) (map[string]any, bool) {
	evs := p.Events(name)
	if len(evs) == 0 {
		return nil, false
	}
	return evs[0], true
}

// WaitEvent polls until an event named name (any with "") for which match
// holds (any with nil) has been printed and returns the first such.
func (p *PLC) WaitEvent(t testing.TB, name string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(WaitLimit)
	for {
		for _, ev := range p.Events(name) {
			if match == nil || match(ev) {
				return ev
			}
		}
		if time.Now().After(deadline) || p.Gone() {
			t.Fatalf("the test PLC printed no matching %q event; stderr:\n%s", name, p.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Acked returns the counters the PLC saw acknowledged, by station.
func (p *PLC) Acked() map[string][]int {
	out := map[string][]int{}
	for _, ev := range p.Events("acked") {
		st := ev["station"].(string)
		out[st] = append(out[st], int(ev["counter"].(float64)))
	}
	return out
}

// Command sends cmd (a JSON object with "cmd", see FOREIGN.md) and waits
// until the PLC has carried it out; it fails the test if the PLC refuses it.
func (p *PLC) Command(t testing.TB, cmd map[string]any) {
	t.Helper()
	if err := p.CommandErr(t, cmd); err != nil {
		t.Fatalf("test PLC command %v: %v", cmd, err)
	}
}

// CommandErr sends cmd and waits for the PLC's answer: nil when it carried
// it out, else the PLC's error message.
func (p *PLC) CommandErr(t testing.TB, cmd map[string]any) error {
	t.Helper()
	p.mu.Lock()
	p.nextID++
	cid := float64(p.nextID)
	msg := map[string]any{"id": cid}
	for k, v := range cmd {
		msg[k] = v
	}
	b, err := json.Marshal(msg)
	if err == nil {
		_, err = p.stdin.Write(append(b, '\n'))
	}
	p.mu.Unlock()
	if err != nil {
		t.Fatalf("send %s to the test PLC: %v", b, err)
	}
	ev := p.WaitEvent(t, "", func(ev map[string]any) bool {
		return ev["id"] == cid && (ev["event"] == "done" || ev["event"] == "error")
	})
	if ev["event"] == "error" {
		return errors.New(ev["error"].(string))
	}
	return nil
}

// Stop ends the PLC: its stdin closes and it gets SIGTERM; it is killed
// if it has not exited within 10 s. Safe twice.
func (p *PLC) Stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.stdin.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.AfterFunc(10*time.Second, func() { _ = p.cmd.Process.Kill() })
	_ = p.cmd.Wait()
	timer.Stop()
}
