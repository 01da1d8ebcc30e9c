package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/nats-io/nats.go"
)

// TestNATSIsNotOpenByDefault: keiline nats serves without identities only
// when asked, and then only on loopback.
func TestNATSIsNotOpenByDefault(t *testing.T) {
	store := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--store", store, "--port", "0"}, "give --secure DIR"},
		{[]string{"--store", store, "--port", "0", "--insecure", "--host", "0.0.0.0"}, "loopback only"},
		{[]string{"--store", store, "--port", "0", "--insecure", "--secure", store}, "give one"},
	} {
		err := Run(t.Context(), append([]string{"nats"}, c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("keiline nats %v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if err := natsOpenness("", true, host); err != nil {
			t.Errorf("--insecure on %s: %v", host, err)
		}
	}
}

// TestNATSRevokeShutsAPartOut: keiline nats revoke of a stolen agent's
// identity ends its open connection on the running server and refuses its
// old credentials from then on, across a restart; the new identity it
// issues is admitted once keiline nats restarts.
func TestNATSRevokeShutsAPartOut(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "line.yaml")
	if err := os.WriteFile(cfg, line.DefaultYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	sec := filepath.Join(dir, "sec")
	if err := runNATSProvision([]string{"--config", cfg, "--dir", sec}, io.Discard); err != nil {
		t.Fatal(err)
	}
	agent := broker.AgentPart(line.Default(), 0)
	stolen := filepath.Join(dir, "stolen.json")
	copyCreds(t, broker.CredsFile(sec, agent), stolen)

	port := freePort(t)
	url := fmt.Sprintf("tls://127.0.0.1:%d", port)
	stop := serveNATS(t, "--store", filepath.Join(dir, "nats"), "--port", strconv.Itoa(port), "--secure", sec)
	nc := dialUntil(t, url, stolen)
	defer nc.Close()

	var out strings.Builder
	if err := runNATSRevoke([]string{"--dir", sec, agent}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "revoked "+agent) || !strings.Contains(out.String(), broker.CredsFile(sec, agent)) {
		t.Errorf("nats revoke says:\n%s", out.String())
	}
	pollUntil(t, "the revoked agent's connection closed", nc.IsClosed)
	if c, err := dial(url, stolen); err == nil {
		c.Close()
		t.Fatal("the revoked credentials connect again")
	}
	stop()

	stop = serveNATS(t, "--store", filepath.Join(dir, "nats"), "--port", strconv.Itoa(port), "--secure", sec)
	defer stop()
	dialUntil(t, url, broker.CredsFile(sec, agent)).Close()
	if c, err := dial(url, stolen); err == nil {
		c.Close()
		t.Fatal("after a restart, the revoked credentials connect")
	}
	// The stolen seed with the new certificate: the nkey was replaced too.
	mixed := filepath.Join(dir, "mixed.json")
	fresh, err := broker.LoadCredentials(broker.CredsFile(sec, agent))
	if err != nil {
		t.Fatal(err)
	}
	old, err := broker.LoadCredentials(stolen)
	if err != nil {
		t.Fatal(err)
	}
	fresh.NKeyFile = old.NKeyFile
	if err := fresh.Write(mixed); err != nil {
		t.Fatal(err)
	}
	if c, err := dial(url, mixed); err == nil {
		c.Close()
		t.Fatal("the stolen nkey connects with the new certificate")
	}

	if err := runNATSRevoke([]string{"--dir", sec, "--remove", agent}, io.Discard); err != nil {
		t.Fatal(err)
	}
	parts, err := broker.ReadLineParts(sec)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(parts, func(p broker.Part) bool { return p.Name == agent }) {
		t.Errorf("after --remove the parts still hold %s", agent)
	}
}

// copyCreds copies a part's credentials file and the files it names, as a
// thief copying them off the line PC would.
func copyCreds(t *testing.T, from, to string) {
	t.Helper()
	c, err := broker.LoadCredentials(from)
	if err != nil {
		t.Fatal(err)
	}
	d := filepath.Dir(to)
	for _, f := range []*string{&c.NKeyFile, &c.CertFile, &c.KeyFile} {
		b, err := os.ReadFile(*f)
		if err != nil {
			t.Fatal(err)
		}
		*f = filepath.Join(d, "stolen-"+filepath.Base(*f))
		if err := os.WriteFile(*f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Write(to); err != nil {
		t.Fatal(err)
	}
}

// serveNATS runs keiline nats in this process until the returned stop.
func serveNATS(t *testing.T, args ...string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, append([]string{"nats"}, args...)) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("keiline nats: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func dial(url, creds string) (*nats.Conn, error) {
	c, err := broker.LoadCredentials(creds)
	if err != nil {
		return nil, err
	}
	return c.Connect(url, nats.NoReconnect())
}

// dialUntil connects with creds once the server is up.
func dialUntil(t *testing.T, url, creds string) *nats.Conn {
	t.Helper()
	var nc *nats.Conn
	pollUntil(t, "connected with "+filepath.Base(creds), func() bool {
		c, err := dial(url, creds)
		nc = c
		return err == nil
	})
	return nc
}

func pollUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
