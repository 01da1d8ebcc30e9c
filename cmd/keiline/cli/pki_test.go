package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keiline/keiline/internal/pki"
)

// TestPKICommands: keiline pki makes the plant CA, issues a server and a
// client certificate, lists them, revokes the client into a newly signed
// revocation list, and refuses bad requests naming what is wrong.
func TestPKICommands(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca")
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runPKI(t.Context(), append(args, "--ca", ca), &out)
		return out.String(), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("pki %v: %v\n%s", args, err, out)
		}
		return out
	}
	must("init")
	if _, err := run("init"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second init: %v, want it refused (the CA key is never overwritten)", err)
	}
	must("issue", "nats-1", "--kind", "server", "--ip", "127.0.0.1", "--dns", "nats-1.plant")
	out := must("issue", "agent-W01", "--kind", "client")
	if !strings.Contains(out, filepath.Join(ca, "certs", "agent-W01.key")) {
		t.Errorf("issue output does not name the key file:\n%s", out)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"issue", "x", "--kind", "printer"}, `kind "printer"`},
		{[]string{"issue", "x", "--kind", "server", "--ip", "300.1.2.3"}, `--ip "300.1.2.3"`},
		{[]string{"issue", "bad name", "--kind", "client"}, `certificate name "bad name"`},
		{[]string{"revoke", "agent-W01", "--reason", "bored"}, `revocation reason "bored"`},
		{[]string{"revoke", "agent-T99"}, "not found"},
	} {
		if _, err := run(bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("pki %v: %v, want an error saying %q", bad.args, err, bad.want)
		}
	}
	must("revoke", "agent-W01", "--reason", "keyCompromise")
	var rows []pkiRow
	if err := json.Unmarshal([]byte(must("list", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	state := map[string]pkiRow{}
	for _, r := range rows {
		state[r.Name] = r
	}
	if len(rows) != 2 || state["nats-1"].Revoked || !state["agent-W01"].Revoked || state["agent-W01"].Reason != "keyCompromise" ||
		len(state["nats-1"].IPs) != 1 || state["nats-1"].IPs[0] != "127.0.0.1" {
		t.Fatalf("list --json = %+v, want nats-1 valid with its IP and agent-W01 revoked for keyCompromise", rows)
	}
	if text := must("list"); !strings.Contains(text, "revoked") || !strings.Contains(text, "nats-1") {
		t.Errorf("list:\n%s", text)
	}
	b, err := os.ReadFile(filepath.Join(ca, pki.CRLFile))
	if err != nil {
		t.Fatal(err)
	}
	crls, err := pki.ParseRevocationLists(b)
	if err != nil || len(crls) != 1 {
		t.Fatalf("revocation list: %v (%d lists)", err, len(crls))
	}
	listed := false
	for _, e := range crls[0].RevokedCertificateEntries {
		listed = listed || e.SerialNumber.Text(16) == state["agent-W01"].Serial
	}
	if !listed {
		t.Errorf("the revocation list does not hold agent-W01's serial %s", state["agent-W01"].Serial)
	}
	must("refresh")
}
