package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keiline/keiline/schema/pgauth"
	"golang.org/x/sys/unix"
)

// ErrNotDataDir is returned by Start when Config.Dir is neither empty nor a
// PostgreSQL data directory.
var ErrNotDataDir = errors.New("directory is not empty and holds no PG_VERSION")

// ErrAlreadyRunning is returned by Start when a live postmaster (from this
// or an earlier run) already serves the data directory.
var ErrAlreadyRunning = errors.New("a postmaster is already running on the data directory")

// Files that keiline keeps in the data directory.
const (
	// confName is the snippet with keiline's settings, rewritten at every
	// Start and included at the end of postgresql.conf.
	confName    = "keiline.conf"
	includeLine = "include_if_exists = '" + confName + "'"
	// logName is the server log, relative to the data directory. The
	// postmaster's stdout and stderr are appended to it (logging_collector
	// stays off); "log" is the directory PostgreSQL itself uses for logs.
	logName = "log/postgres.log"
)

// confText returns the content of confName. The port is not here: it is
// given on the command line at each start.
func confText(tls bool) string {
	ssl := "ssl = off\n"
	if tls {
		ssl = fmt.Sprintf("ssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\nssl_min_protocol_version = 'TLSv1.2'\n", certName, keyName)
	}
	return fmt.Sprintf(`# Written by keiline (schema/pgserver) at every start; edits are lost.
# Use ALTER SYSTEM (postgresql.auto.conf) for local changes.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''	# TCP only: no /var/run conflicts, no socket path limits
fsync = on
max_connections = %d
shared_buffers = '%s'
logging_collector = off		# stderr goes to %s, opened by keiline
log_destination = 'stderr'
password_encryption = 'scram-sha-256'
%s`, MaxConnections, SharedBuffers, logName, ssl)
}

// prepareDir makes dir a data directory that acct can run: it runs initdb
// when dir is absent or empty (the superuser's new password first written
// to pass), gives dir to acct, makes its ancestors traversable, writes the
// conf snippet, pg_hba.conf and the TLS files, clears a stale
// postmaster.pid, and gives an existing cluster whose password pass lacks
// (one made with trust) a new superuser password.
func prepareDir(ctx context.Context, dir, binDir string, acct *account, pass pgauth.File, tls *TLS, log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("pgserver: dir %s: create parent: %w", dir, err)
	}
	if err := acct.ensureTraversable(dir, log); err != nil {
		return err
	}
	initialised, err := isDataDir(dir)
	if err != nil {
		return err
	}
	if !initialised {
		password := pgauth.NewPassword()
		if err := pass.Set(passHost, superuser, password); err != nil {
			return fmt.Errorf("pgserver: dir %s: %w", dir, err)
		}
		if err := initDataDir(ctx, dir, binDir, acct, password, log); err != nil {
			return err
		}
	}
	if err := acct.ensureOwned(dir, log); err != nil {
		return err
	}
	if err := writeConf(dir, acct, tls != nil); err != nil {
		return err
	}
	hadTrust, err := writeHBA(dir, acct, tls != nil)
	if err != nil {
		return err
	}
	if err := writeTLS(dir, acct, tls); err != nil {
		return err
	}
	if err := clearStalePidFile(ctx, dir, log); err != nil {
		return err
	}
	return ensureSuperuserPassword(ctx, dir, binDir, acct, pass, hadTrust, log)
}

// isDataDir reports whether dir holds a cluster (PG_VERSION); false for an
// absent or empty dir, ErrNotDataDir for anything else.
func isDataDir(dir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return true, nil
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("pgserver: dir %s: %w", dir, err)
	case len(entries) > 0:
		return false, fmt.Errorf("pgserver: dir %s: %w", dir, ErrNotDataDir)
	}
	return false, nil
}

// initDataDir runs initdb into a sibling directory dir+".initdb" and renames
// it to dir, so that an initdb interrupted by a crash never leaves a
// half-made cluster at dir. When the rename is impossible (dir is a mount
// point), initdb runs in dir itself.
func initDataDir(ctx context.Context, dir, binDir string, acct *account, password string, log *slog.Logger) error {
	start := time.Now()
	tmp := dir + ".initdb"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("pgserver: dir %s: remove leftover %s: %w", dir, tmp, err)
	}
	if err := runInitdb(ctx, tmp, binDir, acct, password); err != nil {
		return err
	}
	// rename(2) replaces an empty directory; os.Rename refuses to.
	if err := syscall.Rename(tmp, dir); err != nil {
		log.Warn("pgserver: cannot move the new cluster into place, running initdb in place", "dir", dir, "err", err)
		if err := os.RemoveAll(tmp); err != nil {
			return fmt.Errorf("pgserver: dir %s: remove %s: %w", dir, tmp, err)
		}
		if err := runInitdb(ctx, dir, binDir, acct, password); err != nil {
			return err
		}
	}
	log.Info("pgserver: initialised data directory", "dir", dir, "bin_dir", binDir, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// runInitdb makes a cluster in target whose superuser has password and
// every connection authenticates with scram-sha-256 (writeHBA then
// replaces initdb's pg_hba.conf with keiline's, to the same effect).
func runInitdb(ctx context.Context, target, binDir string, acct *account, password string) error {
	if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("pgserver: dir %s: %w", target, err)
	}
	if err := acct.chown(target); err != nil {
		return err
	}
	pwfile, removePwfile, err := writePwfile(target, password, acct)
	if err != nil {
		return err
	}
	defer removePwfile()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"),
		"-D", target, "-U", superuser, "--auth=scram-sha-256", "--pwfile="+pwfile, "-E", "UTF8", "--locale="+serverLocale())
	cmd.Dir = target // our cwd may be unreadable for the postgres user
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = acct.sysProcAttr()
	p, err := startChild(cmd)
	if err != nil {
		return fmt.Errorf("pgserver: dir %s: start initdb: %w", target, err)
	}
	<-p.done
	if p.err != nil {
		return fmt.Errorf("pgserver: dir %s: initdb: %w\n%s", target, p.err, tail(out.Bytes(), tailBytes))
	}
	return nil
}

// serverLocale returns C.UTF-8 when the C library has it (Unicode-aware
// upper/lower, code point order) and C otherwise.
func serverLocale() string {
	for _, name := range []string{"C.utf8", "C.UTF-8"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/locale", name)); err == nil {
			return "C.UTF-8"
		}
	}
	return "C"
}

// childEnv is our environment without the PG* and locale variables, which
// would change what initdb and postgres do.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PG") || strings.HasPrefix(name, "LC_") || name == "LANG" || name == "LANGUAGE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// writeConf writes the conf snippet and makes sure postgresql.conf includes
// it last, so that its settings win over initdb's.
func writeConf(dir string, acct *account, tls bool) error {
	conf := filepath.Join(dir, confName)
	if err := os.WriteFile(conf, []byte(confText(tls)), 0o600); err != nil {
		return fmt.Errorf("pgserver: dir %s: write %s: %w", dir, confName, err)
	}
	if err := acct.chown(conf); err != nil {
		return err
	}
	main := filepath.Join(dir, "postgresql.conf")
	b, err := os.ReadFile(main)
	if err != nil {
		return fmt.Errorf("pgserver: dir %s: %w", dir, err)
	}
	for line := range strings.Lines(string(b)) {
		if strings.TrimSpace(line) == includeLine {
			return nil
		}
	}
	f, err := os.OpenFile(main, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("pgserver: dir %s: %w", dir, err)
	}
	_, err = fmt.Fprintf(f, "\n# keiline's settings (schema/pgserver)\n%s\n", includeLine)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgserver: dir %s: append include to postgresql.conf: %w", dir, err)
	}
	return nil
}

// clearStalePidFile removes postmaster.pid left by a postmaster that is gone
// (killed, or a zombie nobody reaped) and waits until its old processes have
// detached from its shared memory, which postgres would otherwise refuse
// ("pre-existing shared memory block is still in use"). It returns
// ErrAlreadyRunning naming the pid when a live postmaster serves dir.
func clearStalePidFile(ctx context.Context, dir string, log *slog.Logger) error {
	pidFile := filepath.Join(dir, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgserver: dir %s: %w", dir, err)
	}
	lines := strings.Split(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err == nil && pid > 0 && processAlive(pid) {
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err != nil {
			// Cannot tell: let postgres apply its own check.
			return nil
		}
		if sameDir(cwd, dir) {
			return fmt.Errorf("pgserver: dir %s: postmaster pid %d: %w", dir, pid, ErrAlreadyRunning)
		}
		// The pid was reused by an unrelated process.
	}
	if len(lines) >= 7 {
		if err := waitShmDetached(ctx, lines[6]); err != nil {
			return fmt.Errorf("pgserver: dir %s: processes of the old postmaster (pid %d) still attached to its shared memory; terminate them: %w", dir, pid, err)
		}
	}
	log.Info("pgserver: removing stale postmaster.pid", "dir", dir, "pid", pid)
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pgserver: dir %s: %w", dir, err)
	}
	return nil
}

// processAlive reports whether pid runs; zombies count as gone.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Format: pid (comm) state ...; comm may contain spaces and parens.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}

func sameDir(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// waitShmDetached polls the System V segment named by line 7 of
// postmaster.pid ("key shmid") until no process is attached to it, it is
// gone, or ctx ends.
func waitShmDetached(ctx context.Context, line string) error {
	fields := strings.Fields(line)
	if len(fields) != 2 {
		return nil
	}
	key, err1 := strconv.ParseUint(fields[0], 10, 32)
	id, err2 := strconv.Atoi(fields[1])
	if err1 != nil || err2 != nil {
		return nil
	}
	for {
		var d unix.SysvShmDesc
		if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &d); err != nil {
			return nil // gone, or not ours to inspect
		}
		if uint32(d.Perm.Key) != uint32(key) || d.Nattch == 0 {
			return nil
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("shared memory id %d has %d attached: %w", id, d.Nattch, ctx.Err())
		case <-t.C:
		}
	}
}

// tailBytes is how much of a log the errors of Start quote.
const tailBytes = 2048

// tail returns the last n bytes of b, starting at a line boundary.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(b), "\n")
}

// logTail returns the last tailBytes of path written after offset.
func logTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	start := max(offset, fi.Size()-tailBytes)
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return tail(b, tailBytes)
}

// Running reports the port of a live postmaster (not a zombie) that serves
// dir, read from its postmaster.pid, so another process can use a cluster
// that a running keiline started.
func Running(dir string) (port int, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, false
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err1 != nil || err2 != nil || pid <= 0 || !processAlive(pid) {
		return 0, false
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil && !sameDir(cwd, dir) {
		return 0, false // the pid was reused by another process
	}
	return port, true
}

// ServingWaitMax bounds how long Serving waits for a postmaster that is
// neither accepting connections nor gone.
const ServingWaitMax = 30 * time.Second

// Serving is Running for a cluster about to be used: it reports the port
// of a postmaster of dir that accepts connections. A postmaster that is
// still alive but does not accept them — one that is starting, or dying
// because the keiline that started it was killed (Pdeathsig) — is waited
// for until it accepts them or is gone, at most ServingWaitMax; then ok is
// false and the caller may start the cluster itself.
func Serving(ctx context.Context, dir string) (port int, ok bool) {
	deadline := time.Now().Add(ServingWaitMax)
	for {
		port, ok := Running(dir)
		if !ok {
			return 0, false
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			return port, true
		}
		if time.Now().After(deadline) {
			return 0, false
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, false
		case <-t.C:
		}
	}
}
