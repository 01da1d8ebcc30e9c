package broker_test

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keiline/keiline/internal/pki"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func TestPartsValidate(t *testing.T) {
	ok := plantParts()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		part broker.Part
		want string
	}{
		{"dotted name", broker.Part{Name: "agent.W01", Role: broker.RoleAgent}, `name "agent.W01"`},
		{"server's name", broker.Part{Name: broker.ServerCertName, Role: broker.RoleReader}, "server certificate"},
		{"unknown role", broker.Part{Name: "x", Role: "boss"}, `role "boss"`},
		{"agent without stations", broker.Part{Name: "a", Role: broker.RoleAgent, Plant: "US1", Line: "L1"}, "needs stations"},
		{"wildcard station", broker.Part{Name: "a", Role: broker.RoleAgent, Plant: "US1", Line: "L1", Stations: []string{">"}}, `station ">"`},
		{"manifest of another station", broker.Part{Name: "a", Role: broker.RoleAgent, Plant: "US1", Line: "L1", Stations: []string{"W02"}, Manifest: []string{"W01"}}, `manifest station "W01"`},
		{"tracker without line", broker.Part{Name: "t", Role: broker.RoleTracker, Plant: "US1"}, "line"},
		{"second tracker of a line", broker.Part{Name: "t2", Role: broker.RoleTracker, Plant: "US1", Line: "L1"}, "durable consumer"},
		{"taken name", broker.Part{Name: "dashboard", Role: broker.RoleReader}, "taken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := append(plantParts(), tc.part)
			if err := ps.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestPermissionsAreLeast(t *testing.T) {
	ps := plantParts()
	perm := func(name string) broker.Permissions {
		p, err := ps.Permissions(name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	w01 := perm("agent-W01")
	if want := []string{"keiline.US1.L1.W01.>"}; !slices.Equal(w01.Publish.Allow, want) || !w01.Responses {
		t.Errorf("agent W01 publishes %v (responses %v), want %v and its manifest replies", w01.Publish.Allow, w01.Responses, want)
	}
	if want := []string{"_INBOX.agent-W01.>", "keiline_cmd.US1.L1.W01.manifest"}; !slices.Equal(w01.Subscribe.Allow, want) {
		t.Errorf("agent W01 subscribes %v, want %v", w01.Subscribe.Allow, want)
	}
	if t02 := perm("agent-T02"); t02.Responses {
		t.Error("agent T02 serves no manifest, yet may answer requests")
	}
	for _, name := range []string{"dashboard", "tracker-L1", "supplier-seats", "admin"} {
		for _, s := range perm(name).Publish.Allow {
			if strings.HasPrefix(s, "keiline.") || s == ">" {
				t.Errorf("%s may publish events: %s", name, s)
			}
		}
	}
	if d := perm("dashboard"); !slices.Contains(d.Publish.Deny, "$JS.API.CONSUMER.MSG.NEXT.KEILINE_JIS."+broker.SupplierConsumer("US1", "L1", "seats")) {
		t.Errorf("dashboard may pull the supplier's durable consumer: deny %v", d.Publish.Deny)
	}
	if _, err := ps.Permissions("nobody"); err == nil {
		t.Error("Permissions of an unknown part: no error")
	}
	if s := ps.Describe(); !strings.Contains(s, "agent-W01 (agent)") || !strings.Contains(s, "keiline.US1.L1.W01.>") {
		t.Errorf("Describe:\n%s", s)
	}
}

func TestProvisionReusesAndRefusesRevoked(t *testing.T) {
	dir, first := provision(t)
	second, err := broker.Provision(dir, plantParts(), broker.ProvisionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range first.Security.Users {
		if v := second.Security.Users[i]; v.NKey != u.NKey || !sameFile(t, v.CertFile, u.CertFile) {
			t.Errorf("%s: a second Provision changed its identity", u.Name)
		}
	}
	c := first.Credentials["agent-W01"]
	for _, f := range []string{c.NKeyFile, c.KeyFile, filepath.Join(dir, "creds", "agent-W01.json")} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 600", f, fi.Mode(), err)
		}
	}
	loaded, err := broker.LoadCredentials(filepath.Join(dir, "creds", "agent-W01.json"))
	if err != nil || *loaded != *c {
		t.Errorf("LoadCredentials: %+v %v, want %+v", loaded, err, c)
	}
	// New server names renew the server certificate.
	third, err := broker.Provision(dir, plantParts(), broker.ProvisionOptions{ServerDNS: []string{"nats.plant.example"}, ServerIPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if cert, err := pki.LoadCertificate(third.Security.TLS.CertFile); err != nil || !slices.Equal(cert.DNSNames, []string{"nats.plant.example"}) {
		t.Errorf("server certificate after a name change: %v %v", cert.DNSNames, err)
	}
	if _, err := pki.Revoke(first.CADir, "agent-W01", pki.KeyCompromise); err != nil {
		t.Fatal(err)
	}
	if _, err := broker.Provision(dir, plantParts(), broker.ProvisionOptions{}); err == nil || !strings.Contains(err.Error(), "agent-W01") || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("Provision with a revoked part: %v, want an error naming agent-W01", err)
	}
	if _, err := pki.Issue(first.CADir, pki.Request{Name: "agent-W01", Kind: pki.Client}); err != nil {
		t.Fatal(err)
	}
	if _, err := broker.Provision(dir, plantParts(), broker.ProvisionOptions{}); err != nil {
		t.Errorf("Provision after the new certificate: %v", err)
	}
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func TestProvisionWithPlantCA(t *testing.T) {
	// The plant's CA, run by the plant (here with pki, in a directory of
	// the plant's): keiline issues nothing and uses its files.
	plantDir := filepath.Join(t.TempDir(), "plant-ca")
	if err := pki.Init(plantDir); err != nil {
		t.Fatal(err)
	}
	certs := map[string]broker.CertFiles{}
	srv, err := pki.Issue(plantDir, pki.Request{Name: broker.ServerCertName, Kind: pki.Server, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	certs[broker.ServerCertName] = broker.CertFiles{Cert: srv.CertFile, Key: srv.KeyFile}
	parts := plantParts()
	for _, p := range parts {
		c, err := pki.Issue(plantDir, pki.Request{Name: p.Name, Kind: pki.Client})
		if err != nil {
			t.Fatal(err)
		}
		certs[p.Name] = broker.CertFiles{Cert: c.CertFile, Key: c.KeyFile}
	}
	plant := &broker.PlantPKI{Trust: pki.TrustDir(plantDir), Certs: certs}
	dir := filepath.Join(t.TempDir(), "sec")
	missing := map[string]broker.CertFiles{broker.ServerCertName: certs[broker.ServerCertName]}
	if _, err := broker.Provision(dir, parts, broker.ProvisionOptions{Plant: &broker.PlantPKI{Trust: plant.Trust, Certs: missing}}); err == nil || !strings.Contains(err.Error(), "admin") {
		t.Errorf("plant PKI without the parts' certificates: %v, want an error naming a part", err)
	}
	prov, err := broker.Provision(dir, parts, broker.ProvisionOptions{Plant: plant})
	if err != nil {
		t.Fatal(err)
	}
	if prov.CADir != "" {
		t.Errorf("keiline made a CA (%s) beside the plant's", prov.CADir)
	}
	b, err := broker.Start(broker.Config{StoreDir: filepath.Join(dir, "js"), Security: &prov.Security})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	nc, err := prov.Credentials["agent-W01"].Connect(b.URL())
	if err != nil {
		t.Fatalf("agent with the plant's certificate: %v", err)
	}
	nc.Close()
	if _, err := pki.Revoke(plantDir, "agent-W01", pki.KeyCompromise); err != nil {
		t.Fatal(err)
	}
	if nc, err := prov.Credentials["agent-W01"].Connect(b.URL(), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Error("the plant revoked the certificate, yet it connected")
	}
}

func TestWriteConfigIsWhatNATSServerReads(t *testing.T) {
	dir, prov := provision(t)
	path := filepath.Join(dir, "nats.conf")
	cfg := broker.Config{StoreDir: filepath.Join(dir, "js"), Port: 4333, Security: &prov.Security}
	if err := broker.WriteConfig(path, cfg); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v %v, want 600", path, fi.Mode(), err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !opts.SyncAlways || !opts.JetStream || opts.StoreDir != cfg.StoreDir || opts.Port != 4333 || opts.TLSConfig == nil || opts.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert || opts.MaxPayload != broker.MaxPayload {
		t.Errorf("options: sync always %v, jetstream %v, store %q, port %d, TLS %v, max payload %d",
			opts.SyncAlways, opts.JetStream, opts.StoreDir, opts.Port, opts.TLSConfig != nil, opts.MaxPayload)
	}
	if len(opts.Nkeys) != len(plantParts()) || len(opts.TLSPinnedCerts) != len(plantParts()) {
		t.Fatalf("%d nkey users and %d pinned certificates, want %d of each", len(opts.Nkeys), len(opts.TLSPinnedCerts), len(plantParts()))
	}
	for i, u := range prov.Security.Users {
		got := opts.Nkeys[i]
		if got.Nkey != u.NKey || !slices.Equal(got.Permissions.Publish.Allow, u.Permissions.Publish.Allow) ||
			!slices.Equal(got.Permissions.Subscribe.Allow, u.Permissions.Subscribe.Allow) || (got.Permissions.Response != nil) != u.Permissions.Responses {
			t.Errorf("user %s: nats-server reads %+v %+v, want %+v", u.Name, got.Permissions.Publish, got.Permissions.Subscribe, u.Permissions)
		}
	}
	rev, err := pki.Revoke(prov.CADir, "agent-T02", pki.KeyCompromise)
	if err != nil {
		t.Fatal(err)
	}
	if err := broker.WriteConfig(path, cfg); err != nil {
		t.Fatal(err)
	}
	if opts, err = server.ProcessConfigFile(path); err != nil {
		t.Fatal(err)
	}
	if _, pinned := opts.TLSPinnedCerts[pki.PublicKeyPin(rev.Cert)]; pinned || len(opts.TLSPinnedCerts) != len(plantParts())-1 {
		t.Errorf("after revoking agent-T02: %d pins, its key pinned %v", len(opts.TLSPinnedCerts), pinned)
	}
}

func TestCredentialsRefuseReadableSeed(t *testing.T) {
	_, prov := provision(t)
	c := prov.Credentials["agent-W01"]
	if err := os.Chmod(c.NKeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Options(); err == nil || !strings.Contains(err.Error(), c.NKeyFile) {
		t.Errorf("Options with a world-readable seed: %v, want an error naming %s", err, c.NKeyFile)
	}
}

func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte(`{"name":"agent-W01","nkey_file":"a.nk","cert_file":"a.crt","key_file":"a.key","ca_file":"ca.crt","inbox_prefix":"_INBOX.agent-W01"}`))
	f.Add([]byte(`{"name":"x","nkey_file":"/abs/a.nk","cert_file":"a","key_file":"b","ca_file":"c","crl_file":"d","inbox_prefix":"_INBOX.>"}`))
	f.Add([]byte(`{"name":"x","extra":1}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := broker.ParseCredentials(b, "/base")
		if err != nil {
			return
		}
		if c.Validate() != nil {
			t.Errorf("parsed credentials do not validate: %+v", c)
		}
		for _, p := range []string{c.NKeyFile, c.CertFile, c.KeyFile, c.CAFile} {
			if !filepath.IsAbs(p) {
				t.Errorf("path %q not resolved", p)
			}
		}
	})
}

// TestLinePartsCoverTheLine: the identities keiline up and the chaos
// campaign make give every station of the default line to exactly one
// agent, the manifest station's requests to the agent that has it, and
// load back from the directory they were written to.
func TestLinePartsCoverTheLine(t *testing.T) {
	lc := line.Default()
	ps := broker.LineParts(lc, 3)
	if err := ps.Validate(); err != nil {
		t.Fatalf("LineParts of the default line: %v", err)
	}
	owner := map[string]string{}
	for _, p := range ps {
		for _, s := range p.Stations {
			if o, ok := owner[s]; ok {
				t.Errorf("station %s belongs to %s and %s", s, o, p.Name)
			}
			owner[s] = p.Name
		}
		for _, s := range p.Manifest {
			if owner[s] != p.Name {
				t.Errorf("%s serves %s's manifest, which is %s's station", p.Name, s, owner[s])
			}
		}
	}
	for _, st := range lc.Stations {
		if owner[st.ID] == "" {
			t.Errorf("station %s has no agent", st.ID)
		}
	}
	dir := filepath.Join(t.TempDir(), "nats-sec")
	made, err := broker.ProvisionLine(dir, ps)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := broker.LoadLine(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if loaded.Credentials[p.Name] == nil {
			t.Errorf("LoadLine: no credentials for %s", p.Name)
		}
		if _, err := os.Stat(broker.CredsFile(dir, p.Name)); err != nil {
			t.Errorf("credentials file of %s: %v", p.Name, err)
		}
	}
	if len(loaded.Credentials) != len(made.Credentials) {
		t.Errorf("LoadLine has %d identities, ProvisionLine made %d", len(loaded.Credentials), len(made.Credentials))
	}
}
