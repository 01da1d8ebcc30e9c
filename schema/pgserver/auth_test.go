package pgserver

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/keiline/keiline/schema/pgauth"
)

// withPassFile returns rawURL with its passfile parameter set to path.
func withPassFile(t *testing.T, rawURL, path string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("passfile", path)
	u.RawQuery = q.Encode()
	return u.String()
}

// lockedBuffer is a log sink the test reads while the server writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// refusedLogin fails t unless connecting with url is refused with a
// SQLSTATE of want (28P01 wrong password, 28000 no pg_hba.conf line).
func refusedLogin(t *testing.T, what, url, want string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err == nil {
		conn.Close(t.Context())
		t.Errorf("%s: connected, want the login refused (%s)", what, want)
		return
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != want {
		t.Errorf("%s: %v, want SQLSTATE %s", what, err, want)
	}
}

// TestEveryConnectionNeedsAPassword: a fresh cluster trusts nobody — every
// pg_hba.conf rule the server loaded is scram-sha-256, the socket's
// included — and the superuser logs in only with the generated password,
// kept in a 0600 file in a 0700 directory; initdb's password file is gone.
// (The template cluster of copyOfTemplate is a fresh one made by Start.)
func TestEveryConnectionNeedsAPassword(t *testing.T) {
	t.Parallel()
	s := startT(t, Config{Dir: copyOfTemplate(t)})

	conn := connectT(t, s.AdminURL())
	rows, err := conn.Query(t.Context(), `SELECT type, auth_method, coalesce(error, '') FROM pg_hba_file_rules`)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for rows.Next() {
		var typ, method, ruleErr string
		if err := rows.Scan(&typ, &method, &ruleErr); err != nil {
			t.Fatal(err)
		}
		if method != "scram-sha-256" || ruleErr != "" {
			t.Errorf("pg_hba.conf rule %s: method %s (error %q), want scram-sha-256", typ, method, ruleErr)
		}
		types[typ] = true
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if !types["local"] || !types["host"] {
		t.Errorf("pg_hba.conf rules of types %v, want local and host", types)
	}
	var verifier string
	if err := conn.QueryRow(t.Context(), `SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'`).Scan(&verifier); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(verifier, "SCRAM-SHA-256$") {
		t.Errorf("superuser's stored password %.20q…, want a SCRAM-SHA-256 verifier", verifier)
	}

	refusedLogin(t, "no password", withPassFile(t, s.AdminURL(), "/nonexistent"), "28P01")
	wrong := filepath.Join(t.TempDir(), "wrong.pgpass")
	if err := pgauth.File(wrong).Set(passHost, superuser, "not-the-password"); err != nil {
		t.Fatal(err)
	}
	refusedLogin(t, "wrong password", withPassFile(t, s.AdminURL(), wrong), "28P01")

	if want := pgauth.File(filepath.Join(filepath.Dir(s.Dir()), "secrets", "pgdata.pgpass")); s.PassFile() != want {
		t.Errorf("PassFile() = %s, want %s", s.PassFile(), want)
	}
	root, pass := templateRoot, string(templatePass())
	for path, want := range map[string]os.FileMode{pass: 0o600, filepath.Dir(pass): 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	left, _ := filepath.Glob(filepath.Join(root, "*.pwfile"))
	if len(left) > 0 {
		t.Errorf("initdb's password file left behind: %v", left)
	}
	b, err := os.ReadFile(s.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := s.PassFile().Password(passHost, superuser)
	if pw == "" || bytes.Contains(b, []byte(pw)) {
		t.Errorf("superuser password %q empty or in the server log", pw)
	}
}

// TestConvertsATrustCluster starts a data directory made the way keiline
// made them before it used passwords (initdb --auth=trust, no password
// file): Start gives the superuser a password, keeps the data, and the
// old trust rules are gone.
func TestConvertsATrustCluster(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pgdata")
	acct, err := lookupAccount()
	if err != nil {
		t.Fatal(err)
	}
	binDir, err := findBinDir(t.Context(), defaultBinSearch("", dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := acct.ensureTraversable(dir, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := acct.chown(dir); err != nil {
		t.Fatal(err)
	}
	// The old initdb, and a table made in single-user mode (no password).
	for _, step := range []struct {
		stdin string
		args  []string
	}{
		{args: []string{filepath.Join(binDir, "initdb"), "-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"}},
		{stdin: "CREATE TABLE station (id text); INSERT INTO station VALUES ('W01')\n",
			args: []string{filepath.Join(binDir, "postgres"), "--single", "-D", dir, "postgres"}},
	} {
		var out bytes.Buffer
		cmd := exec.Command(step.args[0], step.args[1:]...)
		cmd.Dir, cmd.Env, cmd.Stdin = dir, childEnv(), strings.NewReader(step.stdin)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = acct.sysProcAttr()
		c, err := startChild(cmd)
		if err != nil {
			t.Fatal(err)
		}
		<-c.done
		if c.err != nil || bytes.Contains(out.Bytes(), []byte("ERROR")) {
			t.Fatalf("%s: %v\n%s", step.args[0], c.err, out.String())
		}
	}
	old, err := os.ReadFile(filepath.Join(dir, hbaName))
	if err != nil || !hbaTrusts(old) {
		t.Fatalf("the old cluster's pg_hba.conf does not trust (%v):\n%s", err, old)
	}

	logs := &lockedBuffer{}
	s := startT(t, Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), nil))})
	conn := connectT(t, s.AdminURL())
	if n := countT(t, conn, "SELECT count(*) FROM station WHERE id = 'W01'"); n != 1 {
		t.Errorf("the old cluster's station table has %d rows, want 1", n)
	}
	if !strings.Contains(logs.String(), "made with trust authentication") {
		t.Errorf("Start did not say it converted a trust cluster:\n%s", logs.String())
	}
	now, err := os.ReadFile(filepath.Join(dir, hbaName))
	if err != nil || hbaTrusts(now) {
		t.Errorf("pg_hba.conf still trusts (%v):\n%s", err, now)
	}
	refusedLogin(t, "no password", withPassFile(t, s.AdminURL(), "/nonexistent"), "28P01")

	// The password stays: a restart does not set another one.
	pw, _ := s.PassFile().Password(passHost, superuser)
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	s2 := startT(t, Config{Dir: dir})
	connectT(t, s2.AdminURL())
	if pw2, _ := s2.PassFile().Password(passHost, superuser); pw2 != pw {
		t.Errorf("restart changed the superuser's password")
	}
}

// TestLostPasswordFileIsReplaced: when the password file is deleted, the
// next Start sets a new superuser password and writes a new file.
func TestLostPasswordFileIsReplaced(t *testing.T) {
	t.Parallel()
	dir := copyOfTemplate(t)
	pass := DefaultPassFile(dir)
	old, _ := pgauth.File(pass).Password(passHost, superuser)
	if err := os.Remove(pass); err != nil {
		t.Fatal(err)
	}
	s := startT(t, Config{Dir: dir})
	connectT(t, s.AdminURL())
	if pw, _ := s.PassFile().Password(passHost, superuser); pw == "" || pw == old {
		t.Errorf("password after the file was lost: %q (old %q), want a new one", pw, old)
	}
}

// TestWrongPasswordFileIsNamed: a password file whose superuser line is
// not the cluster's makes Start fail soon, naming the file and the fix.
func TestWrongPasswordFileIsNamed(t *testing.T) {
	t.Parallel()
	dir := copyOfTemplate(t)
	if err := pgauth.File(DefaultPassFile(dir)).Set(passHost, superuser, "stale"); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), Config{Dir: dir, Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), DefaultPassFile(dir)) || !strings.Contains(err.Error(), "delete its postgres line") {
		t.Fatalf("Start with a stale password file: %v, want an error naming the file and the fix", err)
	}
}

// FuzzHBATrusts: keiline's own pg_hba.conf never trusts; any file with a
// trust line added does, whatever else it holds.
func FuzzHBATrusts(f *testing.F) {
	f.Add("local all all trust\n")
	f.Add("# host all all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 md5\n")
	f.Add(hbaText(true))
	f.Fuzz(func(t *testing.T, content string) {
		_ = hbaTrusts([]byte(content))
		for _, tls := range []bool{false, true} {
			if hbaTrusts([]byte(hbaText(tls))) {
				t.Fatal("keiline's pg_hba.conf trusts")
			}
		}
		if !hbaTrusts([]byte(content + "\nhost all all 0.0.0.0/0 trust\n")) {
			t.Fatalf("a trust line after %q not seen", content)
		}
	})
}
