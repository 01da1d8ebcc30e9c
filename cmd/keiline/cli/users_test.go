package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestUsersAndTokensCommands runs keiline users and tokens against an up
// state dir's private PostgreSQL: passwords come from a file or the
// environment, never the command line, and never reach the output; a
// token is printed once.
func TestUsersAndTokensCommands(t *testing.T) {
	state := t.TempDir()
	startStateDB(t, state)
	const pw, pw2 = "a long line-side password", "another long password here"
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	var out bytes.Buffer
	env := map[string]string{}
	a := accounts{out: &out, in: devNull, env: func(k string) string { return env[k] }}
	run := func(cmd string, args ...string) error {
		t.Helper()
		out.Reset()
		args = append(args, "--state", state)
		switch cmd {
		case "users add":
			return a.usersAdd(t.Context(), args)
		case "users list":
			return a.usersList(t.Context(), args)
		case "users disable":
			return a.usersDisable(t.Context(), "disable", args)
		case "users passwd":
			return a.usersPasswd(t.Context(), args)
		case "users roles":
			return a.usersRoles(t.Context(), args)
		case "tokens add":
			return a.tokensAdd(t.Context(), args)
		case "tokens list":
			return a.tokensList(t.Context(), args)
		case "tokens revoke":
			return a.tokensRevoke(t.Context(), args)
		}
		t.Fatalf("no command %s", cmd)
		return nil
	}
	if err := run("users add", "sato", "--roles", "supervisor,operator", "--display", "佐藤", "--password-file", pwFile); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "created user sato (operator, supervisor)\n" {
		t.Errorf("add: %q", got)
	}
	err = run("users add", "ito", "--roles", "operator")
	if err == nil || !strings.Contains(err.Error(), "KEILINE_PASSWORD") {
		t.Errorf("add without a password source (stdin no terminal): %v", err)
	}
	if err := run("users add", "kato", "--roles", "boss", "--password-file", pwFile); err == nil || !strings.Contains(err.Error(), "quality_inspector") {
		t.Errorf("unknown role: %v", err)
	}
	env[envPassword] = "short"
	if err := run("users add", "kato", "--roles", "planner"); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("weak password from the environment: %v", err)
	}
	env[envPassword] = pw2
	if err := run("users add", "kato", "--roles", "planner"); err != nil {
		t.Fatal(err)
	}
	if err := run("users roles", "kato", "planner,quality_inspector"); err != nil {
		t.Fatal(err)
	}
	if err := run("users disable", "sato"); err != nil {
		t.Fatal(err)
	}
	if err := run("users passwd", "kato"); err != nil {
		t.Fatal(err)
	}
	if err := run("users list"); err != nil {
		t.Fatal(err)
	}
	list := out.String()
	for _, want := range []string{"kato", "planner,quality_inspector", "sato", "佐藤", "operator,supervisor", "disabled"} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %q:\n%s", want, list)
		}
	}
	if err := run("tokens add", "erp-orders", "--scopes", "orders:write", "--lifetime", "30d"); err != nil {
		t.Fatal(err)
	}
	tok := regexp.MustCompile(`kl_[A-Za-z0-9_-]{43}`).FindString(out.String())
	if tok == "" || !strings.Contains(out.String(), `token 1 "erp-orders" (orders:write)`) {
		t.Fatalf("tokens add printed %q", out.String())
	}
	if err := run("tokens add", "x", "--scopes", "orders:delete"); err == nil {
		t.Error("unknown scope accepted")
	}
	if err := run("tokens add", "x", "--scopes", "orders:read", "--lifetime", "2000d"); err == nil {
		t.Error("a lifetime past the maximum accepted")
	}
	if err := run("tokens revoke", "1"); err != nil {
		t.Fatal(err)
	}
	if err := run("tokens revoke", "99"); err == nil {
		t.Error("revoking an unknown token: no error")
	}
	if err := run("tokens list", "--json"); err != nil {
		t.Fatal(err)
	}
	if l := out.String(); !strings.Contains(l, `"name":"erp-orders"`) || !strings.Contains(l, `"revoked_at":"`) || strings.Contains(l, tok) {
		t.Errorf("tokens list %s", l)
	}
	if err := run("users list", "--json"); err != nil {
		t.Fatal(err)
	}
	if l := out.String(); strings.Contains(l, pw) || strings.Contains(l, pw2) || strings.Contains(l, "argon2") {
		t.Errorf("users list shows a password or hash: %s", l)
	}
}
