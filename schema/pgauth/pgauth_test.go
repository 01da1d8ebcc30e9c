package pgauth

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestVerifier checks the verifier of a fixed salt against one computed
// with Python's hashlib and hmac (an independent implementation of RFC
// 5802's SaltedPassword, ClientKey, StoredKey and ServerKey); that
// PostgreSQL accepts these verifiers is tested against a real server in
// schema/pgserver and schema.
func TestVerifier(t *testing.T) {
	salt := make([]byte, 16)
	for i := range salt {
		salt[i] = byte(i)
	}
	got, err := verifier("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	const want = "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+E4U/QApd/5Y=:dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE="
	if got != want {
		t.Errorf("verifier = %s\nwant       %s", got, want)
	}
	a, _ := Verifier("pencil")
	b, _ := Verifier("pencil")
	if a == b || !strings.HasPrefix(a, "SCRAM-SHA-256$4096:") {
		t.Errorf("two verifiers of one password: %s, %s; want different salts", a, b)
	}
}

func TestNewPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p := NewPassword()
		raw, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil || len(raw) != PasswordBytes {
			t.Fatalf("NewPassword() = %q: %d bytes, %v", p, len(raw), err)
		}
		if seen[p] {
			t.Fatalf("NewPassword repeated %q", p)
		}
		seen[p] = true
	}
}

func TestFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	f := File(filepath.Join(dir, "pg.pgpass"))
	if pw, err := f.Password("127.0.0.1", "keiline_writer"); err != nil || pw != "" {
		t.Fatalf("absent file: %q, %v; want no password", pw, err)
	}
	pw, created, err := f.Ensure("127.0.0.1", "keiline_writer")
	if err != nil || !created || pw == "" {
		t.Fatalf("Ensure = %q, %v, %v", pw, created, err)
	}
	for path, want := range map[string]os.FileMode{string(f): ModeFile, dir: ModeDir} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want mode %v", path, fi.Mode(), err, want)
		}
	}
	if again, created, _ := f.Ensure("127.0.0.1", "keiline_writer"); again != pw || created {
		t.Errorf("second Ensure = %q (created %v), want the first password", again, created)
	}

	// Set keeps the other lines, escapes what needs it, replaces its own.
	other := "# the DBA's\ndb.plant:5432:keiline:keiline_owner:s3cret\n"
	if err := os.WriteFile(string(f), append([]byte(other), []byte("127.0.0.1:*:*:keiline_writer:"+pw+"\n")...), ModeFile); err != nil {
		t.Fatal(err)
	}
	if err := f.Set("::1", "keiline_auditor", `a:b\c`); err != nil {
		t.Fatal(err)
	}
	if err := f.Set("127.0.0.1", "keiline_writer", "new"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(string(f))
	if want := other + "127.0.0.1:*:*:keiline_writer:new\n" + `\:\:1:*:*:keiline_auditor:a\:b\\c` + "\n"; string(b) != want {
		t.Errorf("file after Set:\n%s\nwant\n%s", b, want)
	}
	for _, c := range []struct{ host, port, db, user, want string }{
		{"::1", "5432", "keiline", "keiline_auditor", `a:b\c`},
		{"127.0.0.1", "41000", "keiline", "keiline_writer", "new"},
		{"db.plant", "5432", "keiline", "keiline_owner", "s3cret"},
		{"db.plant", "5433", "keiline", "keiline_owner", ""},
	} {
		if got, err := f.Lookup(c.host, c.port, c.db, c.user); err != nil || got != c.want {
			t.Errorf("Lookup(%s, %s, %s, %s) = %q, %v; want %q", c.host, c.port, c.db, c.user, got, err, c.want)
		}
	}

	for _, bad := range []struct{ host, user, password string }{{"h", "u", ""}, {"h", "u", "a\nb"}, {"#h", "u", "p"}, {"h", " u", "p"}} {
		if err := f.Set(bad.host, bad.user, bad.password); err == nil {
			t.Errorf("Set(%q, %q, %q) accepted", bad.host, bad.user, bad.password)
		}
	}

	if err := os.Chmod(string(f), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Password("127.0.0.1", "keiline_writer"); !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), string(f)) {
		t.Errorf("a file others may read: %v, want ErrPermissions naming it", err)
	}
}

// TestEnsureConcurrent: processes (here goroutines) that Ensure one file at
// once agree on one password.
func TestEnsureConcurrent(t *testing.T) {
	f := File(filepath.Join(t.TempDir(), "pgpass"))
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() {
			pw, _, err := f.Ensure("127.0.0.1", "keiline_web")
			if err != nil {
				t.Error(err)
			}
			got[i] = pw
		})
	}
	wg.Wait()
	for _, pw := range got {
		if pw != got[0] || pw == "" {
			t.Fatalf("concurrent Ensure gave %q", got)
		}
	}
}

// FuzzReplace: whatever a password file holds, after replace the line's
// password is found by the same parser pgx uses and no other line is lost.
func FuzzReplace(f *testing.F) {
	f.Add("", "127.0.0.1", "keiline_writer", "pw")
	f.Add("# c\n*:*:*:*:x\n127.0.0.1:*:*:keiline_writer:old\n", "127.0.0.1", "keiline_writer", "new")
	f.Add("a:b:c:d:e\\:f\n\n  \n", "::1", "u\\v", "p:q")
	f.Fuzz(func(t *testing.T, content, host, user, password string) {
		if checkFields(host, user, password) != nil {
			return
		}
		out := string(replace([]byte(content), host, user, password))
		if got := find([]byte(out), host, user); got != password {
			t.Fatalf("find after replace = %q, want %q\n%s", got, password, out)
		}
		kept := 0
		for line := range strings.Lines(content) {
			if e := parse(line); e == nil || !isLine(e, host, user) {
				kept++
			}
		}
		if n := strings.Count(out, "\n"); n != kept+1 {
			t.Fatalf("replace kept %d lines of %d others (+1)\n%q\n%q", n-1, kept, content, out)
		}
	})
}
