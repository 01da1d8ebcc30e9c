package pgserver

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/keiline/keiline/schema/pgauth"
)

// How the cluster authenticates (the files keiline writes at every Start).
const (
	// passHost is the host of the superuser's line in the password file:
	// the server listens on 127.0.0.1 only.
	passHost = "127.0.0.1"
	// hbaName is the client authentication file, rewritten at every Start.
	hbaName = "pg_hba.conf"
	// Files of Config.TLS, copied into the data directory.
	certName = "server.crt"
	keyName  = "server.key"
)

// hbaText returns keiline's pg_hba.conf: a SCRAM-SHA-256 password for
// every connection, the local socket included (keiline.conf disables the
// socket, but a socket enabled by ALTER SYSTEM asks for passwords too);
// with TLS, TCP connections must use it (hostssl), without it nothing else
// matches and the server refuses them.
func hbaText(tls bool) string {
	host := "host   "
	if tls {
		host = "hostssl"
	}
	return "# Written by keiline (schema/pgserver) at every start; edits are lost.\n" +
		"# Every connection proves a SCRAM-SHA-256 password: nothing is trusted.\n" +
		"# TYPE  DATABASE  USER  ADDRESS       METHOD\n" +
		"local    all       all                 scram-sha-256\n" +
		host + "  all       all   127.0.0.1/32  scram-sha-256\n"
}

// writeHBA writes pg_hba.conf and reports whether the file it replaced let
// a connection in without a password (trust, as clusters made before
// keiline used scram had).
func writeHBA(dir string, acct *account, tls bool) (hadTrust bool, err error) {
	path := filepath.Join(dir, hbaName)
	if old, err := os.ReadFile(path); err == nil {
		hadTrust = hbaTrusts(old)
	}
	if err := os.WriteFile(path, []byte(hbaText(tls)), 0o600); err != nil {
		return false, fmt.Errorf("pgserver: dir %s: write %s: %w", dir, hbaName, err)
	}
	return hadTrust, acct.chown(path)
}

// hbaTrusts reports whether a pg_hba.conf has a line whose method is trust.
func hbaTrusts(b []byte) bool {
	for line := range strings.Lines(string(b)) {
		line, _, _ = strings.Cut(line, "#")
		if f := strings.Fields(line); len(f) >= 4 && f[len(f)-1] == "trust" {
			return true
		}
	}
	return false
}

// writeTLS copies the certificate and key of t into dir for the server's
// user, the key mode 0600 as postgres demands.
func writeTLS(dir string, acct *account, t *TLS) error {
	if t == nil {
		return nil
	}
	for _, f := range []struct{ src, name string }{{t.CertFile, certName}, {t.KeyFile, keyName}} {
		b, err := os.ReadFile(f.src)
		if err != nil {
			return fmt.Errorf("pgserver: dir %s: Config.TLS: %w", dir, err)
		}
		dst := filepath.Join(dir, f.name)
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return fmt.Errorf("pgserver: dir %s: write %s: %w", dir, f.name, err)
		}
		if err := os.Chmod(dst, 0o600); err != nil { // an older copy may have had another mode
			return fmt.Errorf("pgserver: dir %s: %w", dir, err)
		}
		if err := acct.chown(dst); err != nil {
			return err
		}
	}
	return nil
}

// writePwfile writes password to a file initdb (run as acct) can read, in
// the data directory's parent, and returns its path and a function that
// removes it. The password stays in it for the seconds initdb runs.
func writePwfile(target, password string, acct *account) (string, func(), error) {
	path := target + ".pwfile"
	_ = os.Remove(path) // a leftover of a crash
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("pgserver: dir %s: initdb password file: %w", target, err)
	}
	_, err = fmt.Fprintln(f, password)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = acct.chown(path)
	}
	remove := func() { _ = os.Remove(path) }
	if err != nil {
		remove()
		return "", nil, fmt.Errorf("pgserver: dir %s: initdb password file: %w", target, err)
	}
	return path, remove, nil
}

// ensureSuperuserPassword makes sure the password file holds the
// superuser's password. When it does not — a data directory made before
// keiline used passwords (with trust), or a password file lost or deleted
// — it sets a new password in single-user mode, which needs no
// authentication and opens no socket, and then writes it to the file. A
// crash in between leaves the file without the line, so the next Start
// sets a password again.
func ensureSuperuserPassword(ctx context.Context, dir, binDir string, acct *account, pass pgauth.File, hadTrust bool, log *slog.Logger) error {
	have, err := pass.Password(passHost, superuser)
	if err != nil {
		return fmt.Errorf("pgserver: dir %s: %w", dir, err)
	}
	if have != "" {
		return nil
	}
	why := "its password file " + string(pass) + " has no line for " + superuser
	if hadTrust {
		why = "it was made with trust authentication"
	}
	log.Warn("pgserver: giving the superuser a new password (scram-sha-256): "+why, "dir", dir, "password_file", string(pass))
	password := pgauth.NewPassword()
	verifier, err := pgauth.Verifier(password)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "postgres"), "--single", "-D", dir, "-c", "exit_on_error=on", superuser)
	cmd.Dir = dir
	cmd.Env = childEnv()
	// One statement per line in single-user mode; the verifier has no quote.
	cmd.Stdin = strings.NewReader("ALTER ROLE " + superuser + " WITH LOGIN PASSWORD '" + verifier + "'\n")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = acct.sysProcAttr()
	p, err := startChild(cmd)
	if err != nil {
		return fmt.Errorf("pgserver: dir %s: start postgres --single: %w", dir, err)
	}
	<-p.done
	if p.err != nil || bytes.Contains(out.Bytes(), []byte("ERROR:")) || bytes.Contains(out.Bytes(), []byte("FATAL:")) {
		return fmt.Errorf("pgserver: dir %s: set the superuser's password in single-user mode: %v\n%s", dir, p.err, tail(out.Bytes(), tailBytes))
	}
	if err := pass.Set(passHost, superuser, password); err != nil {
		return fmt.Errorf("pgserver: dir %s: %w", dir, err)
	}
	return nil
}
