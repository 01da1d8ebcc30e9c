package pgserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestServingWaitsForADyingPostmaster: a postmaster.pid naming a live
// process of dir that accepts no connections (a postmaster dying with the
// keiline that started it) is Running but not Serving: Serving waits until
// it is gone and says no, so the caller starts the cluster again; a
// postmaster that accepts connections is Serving at once.
func TestServingWaitsForADyingPostmaster(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens: connections are refused

	dying := exec.Command("sleep", "1")
	dying.Dir = dir
	if err := dying.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = dying.Wait() }() // reaped when it ends, as init would
	pidFile := filepath.Join(dir, "postmaster.pid")
	writePid := func(pid, port int) {
		if err := os.WriteFile(pidFile, fmt.Appendf(nil, "%d\n%s\n0\n%d\n\n127.0.0.1\n0 0\nready\n", pid, dir, port), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writePid(dying.Process.Pid, port)
	if _, ok := Running(dir); !ok {
		t.Fatal("the dying postmaster is not Running: the test shows nothing")
	}
	if p, ok := Serving(t.Context(), dir); ok {
		t.Fatalf("Serving says port %d for a postmaster that accepts no connections", p)
	}
	if _, ok := Running(dir); ok {
		t.Fatal("Serving returned while the process still ran")
	}

	// A live process of dir that accepts connections.
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	live := exec.Command("sleep", "30")
	live.Dir = dir
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = live.Process.Kill(); _ = live.Wait() }()
	writePid(live.Process.Pid, l.Addr().(*net.TCPAddr).Port)
	if p, ok := Serving(t.Context(), dir); !ok || p != l.Addr().(*net.TCPAddr).Port {
		t.Errorf("Serving = %d, %v for a postmaster that accepts connections", p, ok)
	}
}
