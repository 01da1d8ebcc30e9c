package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/pki"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

var binDir string

func TestMain(m *testing.M) {
	code := func() int {
		defer func() {
			if binDir != "" {
				_ = os.RemoveAll(binDir)
			}
		}()
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// natsServerBinary builds nats-server from the module go.mod requires
// (v2.15.2), once per test run: the machine's own nats-server is older
// and a shared service.
func natsServerBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "keiline-nats-server-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(binDir, "nats-server")
		out, err := exec.Command("go", "build", "-o", buildBin, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build nats-server: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// plantParts is a small plant: two lines, agents for a framing station
// and a trim station, a tracker per line, a dashboard, a JIS supplier and
// the admin.
func plantParts() broker.Parts {
	return broker.Parts{
		{Name: "admin", Role: broker.RoleAdmin},
		{Name: "agent-W01", Role: broker.RoleAgent, Plant: "US1", Line: "L1", Stations: []string{"W01"}, Manifest: []string{"W01"}},
		{Name: "agent-T02", Role: broker.RoleAgent, Plant: "US1", Line: "L1", Stations: []string{"T02"}},
		{Name: "tracker-L1", Role: broker.RoleTracker, Plant: "US1", Line: "L1"},
		{Name: "tracker-L2", Role: broker.RoleTracker, Plant: "US1", Line: "L2"},
		{Name: "operator-L1", Role: broker.RoleOperator, Plant: "US1", Line: "L1"},
		{Name: "web-L1", Role: broker.RoleWeb, Plant: "US1", Line: "L1"},
		{Name: "dashboard", Role: broker.RoleDashboard},
		{Name: "supplier-seats", Role: broker.RoleSupplier, Plant: "US1", Line: "L1", Supplier: "seats"},
	}
}

// rig is a secured server with the plant's parts provisioned.
type rig struct {
	t     *testing.T
	dir   string
	prov  *broker.Provisioned
	url   string
	store string
	// revoke revokes a part's certificate and makes the server act on
	// it: refuse it and close its connections.
	revoke func(name string)
}

func provision(t testing.TB) (string, *broker.Provisioned) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sec")
	prov, err := broker.Provision(dir, plantParts(), broker.ProvisionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return dir, prov
}

// startEmbedded runs the server in this process.
func startEmbedded(t *testing.T) *rig {
	dir, prov := provision(t)
	r := &rig{t: t, dir: dir, prov: prov, store: filepath.Join(dir, "js")}
	b, err := broker.Start(broker.Config{StoreDir: r.store, Security: &prov.Security})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	r.url = b.URL()
	r.revoke = func(name string) {
		t.Helper()
		if _, err := pki.Revoke(prov.CADir, name, pki.KeyCompromise); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Revalidate(); err != nil {
			t.Fatal(err)
		}
	}
	r.setup()
	return r
}

// startProcess runs a separate nats-server from the file WriteConfig
// writes.
func startProcess(t *testing.T) *rig {
	bin := natsServerBinary(t)
	dir, prov := provision(t)
	r := &rig{t: t, dir: dir, prov: prov, store: filepath.Join(dir, "js")}
	conf := filepath.Join(dir, "nats.conf")
	cfg := broker.Config{StoreDir: r.store, Security: &prov.Security}
	portsDir := filepath.Join(dir, "ports")
	if err := os.Mkdir(portsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func() {
		t.Helper()
		if err := broker.WriteConfig(conf, cfg); err != nil {
			t.Fatal(err)
		}
		// The test learns the free port the server took from its ports file.
		f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "ports_file_dir: %q\n", portsDir)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write()
	logPath := filepath.Join(dir, "nats-server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("nats-server log:\n%s", b)
		}
	})
	ports := filepath.Join(portsDir, fmt.Sprintf("nats-server_%d.ports", cmd.Process.Pid))
	waitFor(t, "nats-server's ports file", func() bool {
		b, err := os.ReadFile(ports)
		if err != nil {
			return false
		}
		var p struct {
			Nats []string `json:"nats"`
		}
		if json.Unmarshal(b, &p) != nil || len(p.Nats) == 0 {
			return false
		}
		r.url = p.Nats[0]
		return true
	})
	r.revoke = func(name string) {
		t.Helper()
		if _, err := pki.Revoke(prov.CADir, name, pki.KeyCompromise); err != nil {
			t.Fatal(err)
		}
		write()
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	r.setup()
	return r
}

// setup creates the streams as the admin.
func (r *rig) setup() {
	r.t.Helper()
	js := r.js(r.conn("admin"))
	if err := streams.Ensure(r.t.Context(), js, 1); err != nil {
		r.t.Fatal(err)
	}
	if err := streams.EnsureBroadcast(r.t.Context(), js, 1); err != nil {
		r.t.Fatal(err)
	}
}

// client is a part's connection and the asynchronous errors the server
// sent it (permission violations).
type client struct {
	*nats.Conn
	name string
	errs chan error
}

func (r *rig) creds(name string) *broker.Credentials {
	c, ok := r.prov.Credentials[name]
	if !ok {
		r.t.Fatalf("no credentials for %s", name)
	}
	return c
}

func (r *rig) conn(name string, opts ...nats.Option) *client {
	r.t.Helper()
	c, err := r.dial(name, opts...)
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

func (r *rig) dial(name string, opts ...nats.Option) (*client, error) {
	c := &client{name: name, errs: make(chan error, 64)}
	opts = append([]nats.Option{nats.NoReconnect(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case c.errs <- err:
		default:
		}
	})}, opts...)
	nc, err := r.creds(name).Connect(r.url, opts...)
	if err != nil {
		return nil, err
	}
	r.t.Cleanup(nc.Close)
	c.Conn = nc
	return c, nil
}

func (r *rig) js(c *client) jetstream.JetStream {
	r.t.Helper()
	js, err := jetstream.New(c.Conn)
	if err != nil {
		r.t.Fatal(err)
	}
	return js
}

// denied waits for the server to refuse subject to c (a permission
// violation naming it).
func (c *client) denied(t *testing.T, subject string) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
		case <-deadline.C:
			t.Fatalf("%s: the server did not refuse %s", c.name, subject)
		}
	}
}

// deniedCall runs call and expects the server to refuse subject on the
// way; call's context ends once the refusal arrived, and call must fail.
func (c *client) deniedCall(t *testing.T, subject string, call func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	c.denied(t, subject)
	cancel()
	if err := <-done; err == nil {
		t.Errorf("%s: the server refused %s, yet the call succeeded", c.name, subject)
	}
}

func waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
