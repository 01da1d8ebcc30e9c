package pgauth

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgpassfile"
	"golang.org/x/sys/unix"
)

// File permissions of the password files File writes.
const (
	// ModeFile is a password file's mode; libpq ignores a password file
	// that group or others may read.
	ModeFile os.FileMode = 0o600
	// ModeDir is the mode of a directory File creates to hold one.
	ModeDir os.FileMode = 0o700
)

// ErrPermissions is returned by File's methods when the file may be read
// by its group or others; the error names the file and its mode.
var ErrPermissions = errors.New("password file readable by group or others (want mode 0600)")

// File is the path of a libpq password file
// (https://www.postgresql.org/docs/current/libpq-pgpass.html): one line
// hostname:port:database:username:password per entry, '*' matching any
// value, the first matching line winning, ':' and '\' escaped with '\'.
// pgx reads the same file (the passfile connection parameter, PGPASSFILE)
// and so does psql.
//
// The files File writes have ModeFile; a directory it creates for one has
// ModeDir. An absent file holds no entries.
type File string

// Lookup returns the password of the first entry that matches host, port,
// database and user, or "" when none does.
func (f File) Lookup(host, port, database, user string) (string, error) {
	b, err := f.read()
	if err != nil {
		return "", err
	}
	pf, err := pgpassfile.ParsePassfile(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("pgauth: password file %s: %w", f, err)
	}
	return pf.FindPassword(host, port, database, user), nil
}

// Password returns the password of f's line host:*:*:user (the line
// Ensure and Set write), or "" when f has none.
func (f File) Password(host, user string) (string, error) {
	b, err := f.read()
	if err != nil {
		return "", err
	}
	return find(b, host, user), nil
}

// checkFields refuses values a password file line cannot hold as they are:
// libpq's parser (and pgx's) ends a line at a newline, trims spaces at its
// ends and takes a line starting with '#' for a comment.
func checkFields(host, user, password string) error {
	for _, v := range []struct{ name, s string }{{"host", host}, {"user", user}, {"password", password}} {
		if v.s == "" || strings.ContainsAny(v.s, "\r\n\x00") || strings.TrimSpace(v.s) != v.s {
			return fmt.Errorf("pgauth: %s %q: want non-empty, no line breaks, no spaces at the ends", v.name, v.s)
		}
	}
	if strings.HasPrefix(host, "#") {
		return fmt.Errorf("pgauth: host %q: may not start with '#'", host)
	}
	return nil
}

// Ensure returns the password f holds for user on host (any port, any
// database: the line host:*:*:user), and when f has none it generates one
// with NewPassword and adds that line; created reports the latter. Several
// processes may Ensure the same file at once: they agree on one password.
func (f File) Ensure(host, user string) (password string, created bool, err error) {
	if err := checkFields(host, user, "x"); err != nil {
		return "", false, err
	}
	err = f.locked(func() error {
		b, err := f.read()
		if err != nil {
			return err
		}
		if password = find(b, host, user); password != "" {
			return nil
		}
		password, created = NewPassword(), true
		return f.write(replace(b, host, user, password))
	})
	if err != nil {
		return "", false, err
	}
	return password, created, nil
}

// Set makes password the one f holds for user on host: the line
// host:*:*:user replaces an earlier one or is added. The file is replaced
// atomically, so a reader sees the old or the new file, never a mix.
func (f File) Set(host, user, password string) error {
	if err := checkFields(host, user, password); err != nil {
		return fmt.Errorf("password file %s: %w", f, err)
	}
	return f.locked(func() error {
		b, err := f.read()
		if err != nil {
			return err
		}
		return f.write(replace(b, host, user, password))
	})
}

// read returns the file's content, nil when it does not exist.
func (f File) read() ([]byte, error) {
	if f == "" {
		return nil, errors.New("pgauth: no password file named")
	}
	fi, err := os.Stat(string(f))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgauth: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("pgauth: %s (mode %v): %w", f, fi.Mode().Perm(), ErrPermissions)
	}
	b, err := os.ReadFile(string(f))
	if err != nil {
		return nil, fmt.Errorf("pgauth: %w", err)
	}
	return b, nil
}

// locked runs fn holding an exclusive lock on the file's directory, which
// it creates when needed.
func (f File) locked(fn func() error) error {
	if f == "" {
		return errors.New("pgauth: no password file named")
	}
	dir := filepath.Dir(string(f))
	if err := os.MkdirAll(dir, ModeDir); err != nil {
		return fmt.Errorf("pgauth: password file %s: %w", f, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("pgauth: password file %s: %w", f, err)
	}
	defer d.Close()
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("pgauth: password file %s: lock %s: %w", f, dir, err)
	}
	defer unix.Flock(int(d.Fd()), unix.LOCK_UN)
	return fn()
}

// write replaces the file with b: a temporary file of ModeFile in the same
// directory, synced, renamed over it, and the directory synced.
func (f File) write(b []byte) error {
	dir := filepath.Dir(string(f))
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(string(f))+".*")
	if err != nil {
		return fmt.Errorf("pgauth: password file %s: %w", f, err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	err = tmp.Chmod(ModeFile)
	if err == nil {
		_, err = tmp.Write(b)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), string(f))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("pgauth: write password file %s: %w", f, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// find returns the password of the line host:*:*:user in b, or "".
func find(b []byte, host, user string) string {
	for line := range strings.Lines(string(b)) {
		if e := parse(line); e != nil && isLine(e, host, user) {
			return e.Password
		}
	}
	return ""
}

// replace returns b with the line host:*:*:user set to password: the first
// such line is replaced, later ones dropped, and the line is appended when
// b has none. Other lines are kept as they are.
func replace(b []byte, host, user, password string) []byte {
	line := strings.Join([]string{escape(host), "*", "*", escape(user), escape(password)}, ":") + "\n"
	var out strings.Builder
	done := false
	for l := range strings.Lines(string(b)) {
		if e := parse(l); e != nil && isLine(e, host, user) {
			if !done {
				out.WriteString(line)
				done = true
			}
			continue
		}
		out.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			out.WriteString("\n")
		}
	}
	if !done {
		out.WriteString(line)
	}
	return []byte(out.String())
}

func isLine(e *pgpassfile.Entry, host, user string) bool {
	return e.Hostname == host && e.Port == "*" && e.Database == "*" && e.Username == user
}

// parse returns the entry of one line, nil for a comment or a bad line.
func parse(line string) *pgpassfile.Entry {
	line = strings.TrimRight(line, "\r\n")
	pf, err := pgpassfile.ParsePassfile(strings.NewReader(line))
	if err != nil || len(pf.Entries) != 1 {
		return nil
	}
	return pf.Entries[0]
}

// escape escapes ':' and '\' for a password file field.
func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
}
