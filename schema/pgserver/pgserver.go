// Package pgserver runs a private PostgreSQL cluster as a child process of
// keiline: initdb on first start, postgres listening on 127.0.0.1 only (no
// Unix sockets), every connection authenticated with a SCRAM-SHA-256
// password (keiline writes pg_hba.conf at every start; nothing is
// trusted), optionally over TLS only (Config.TLS).
//
// The superuser postgres gets a generated password at initdb (given by a
// --pwfile removed right after); it is kept in the cluster's libpq
// password file (Config.PassFile, mode 0600 in a 0700 directory), which
// the URLs of Server.URL name with the passfile parameter, so a URL
// carries no password and pgx reads it from the file. A data directory made
// before keiline used passwords (with trust) is converted at its next
// Start: the superuser gets a password in single-user mode, with no socket
// open, and pg_hba.conf is replaced.
//
// The postmaster is a direct child started with PR_SET_PDEATHSIG=SIGKILL, so
// when keiline dies, even by kill -9, the postmaster is killed and its
// backends exit on their own; the next Start on the same directory clears
// the stale postmaster.pid. When keiline runs as root, initdb and postgres
// (which refuse root) run as the user postgres, or nobody when postgres does
// not exist; see Start for the file permissions this changes.
//
// The server log is appended to <Dir>/log/postgres.log (see Server.LogPath).
// Linux only.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/keiline/keiline/schema/pgauth"
)

// ErrExited is wrapped by the errors of Start and Stop when the postmaster
// exited on its own; the error quotes the end of the server log.
var ErrExited = errors.New("postgres exited")

// portAttempts is how many ports Start tries when Config.Port is 0 and
// postgres exits during startup (another process took the port).
const portAttempts = 3

// superuser is the role initdb creates; its password is in the password
// file.
const superuser = "postgres"

// authGrace is how long the readiness probe keeps trying after the server
// refused its password: with a fixed port another cluster may answer until
// our postmaster fails to bind.
const authGrace = 2 * time.Second

// Server is a running postmaster. Its methods are safe for concurrent use.
type Server struct {
	dir         string
	passFile    pgauth.File
	tls         *TLS
	port        int
	logPath     string
	log         *slog.Logger
	stopTimeout time.Duration
	child       *child
	stopping    atomic.Bool
	stopOnce    sync.Once
	stopErr     error
}

// Start initialises cfg.Dir when it is absent or empty, starts postgres on
// it and returns once the server accepts connections, within
// cfg.StartTimeout or ctx, whichever ends first.
//
// When this process is root, Start gives cfg.Dir to the unprivileged user
// (see package doc) and adds o+x (search, not listing) to ancestors of
// cfg.Dir that this user cannot traverse, but only to those this process
// owns that are cfg.Dir's parent or strictly below os.TempDir(); any other
// blocking ancestor is an error naming it. A stale postmaster.pid from a
// killed run is removed. With cfg.Port 0, a free port is picked and, if
// postgres exits during startup, up to two more ports are tried.
//
// Start returns an error wrapping ErrNoBinaries, ErrNotDataDir,
// ErrAlreadyRunning (naming the live postmaster's pid) or ErrExited (quoting
// the log tail), or the error of a failed step naming cfg.Dir.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()

	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: dir %s: %w", cfg.Dir, err)
	}
	passFile := cfg.PassFile
	if passFile == "" {
		passFile = DefaultPassFile(dir)
	}
	if passFile, err = filepath.Abs(passFile); err != nil {
		return nil, fmt.Errorf("pgserver: dir %s: password file %s: %w", dir, cfg.PassFile, err)
	}
	acct, err := lookupAccount()
	if err != nil {
		return nil, err
	}
	binDir, err := findBinDir(ctx, defaultBinSearch(cfg.BinDir, dir))
	if err != nil {
		return nil, fmt.Errorf("pgserver: dir %s: %w", dir, err)
	}
	if err := prepareDir(ctx, dir, binDir, acct, pgauth.File(passFile), cfg.TLS, cfg.Logger); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, logName)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, fmt.Errorf("pgserver: dir %s: create log directory: %w", dir, err)
	}
	if err := acct.chown(filepath.Dir(logPath)); err != nil {
		return nil, err
	}

	for attempt := 1; ; attempt++ {
		port := cfg.Port
		if port == 0 {
			if port, err = pickPort(ctx); err != nil {
				return nil, fmt.Errorf("pgserver: dir %s: pick a port: %w", dir, err)
			}
		}
		s := &Server{
			dir:         dir,
			passFile:    pgauth.File(passFile),
			tls:         cfg.TLS,
			port:        port,
			logPath:     logPath,
			log:         cfg.Logger.With("dir", dir, "port", port),
			stopTimeout: cfg.StopTimeout,
		}
		err := s.launch(ctx, binDir, acct)
		if err == nil {
			return s, nil
		}
		if cfg.Port != 0 || attempt == portAttempts || !errors.Is(err, ErrExited) || ctx.Err() != nil {
			return nil, err
		}
		s.log.Warn("pgserver: postgres exited during startup, trying another port", "attempt", attempt, "err", err)
	}
}

// pickPort returns a port that was free on 127.0.0.1 a moment ago; postgres
// binds it with SO_REUSEADDR. It is a variable for tests.
var pickPort = func(ctx context.Context) (int, error) {
	for {
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			return 0, err
		}
		if port != 5432 { // never the default port of a shared server
			return port, nil
		}
	}
}

// launch starts the postmaster on s.port and waits until it accepts
// connections. On failure the postmaster is gone when launch returns.
func (s *Server) launch(ctx context.Context, binDir string, acct *account) error {
	logFile, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("pgserver: dir %s: open log: %w", s.dir, err)
	}
	// The child keeps its own descriptor; ours is only needed for Start.
	defer logFile.Close()
	if err := acct.chown(s.logPath); err != nil {
		return err
	}
	fi, err := logFile.Stat()
	if err != nil {
		return fmt.Errorf("pgserver: dir %s: %w", s.dir, err)
	}
	offset := fi.Size()
	fmt.Fprintf(logFile, "# keiline pgserver: starting postgres on 127.0.0.1:%d at %s\n", s.port, time.Now().UTC().Format(time.RFC3339))

	cmd := exec.Command(filepath.Join(binDir, "postgres"), "-D", s.dir, "-p", strconv.Itoa(s.port))
	cmd.Dir = s.dir
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = acct.sysProcAttr()
	c, err := startChild(cmd)
	if err != nil {
		return fmt.Errorf("pgserver: dir %s: start postgres: %w", s.dir, err)
	}
	s.child = c

	if err := s.waitReady(ctx); err != nil {
		if !errors.Is(err, ErrExited) {
			s.stopping.Store(true)
			s.terminate(syscall.SIGQUIT, 5*time.Second) // immediate shutdown
		}
		return fmt.Errorf("pgserver: dir %s port %d: %w\nlog %s:\n%s", s.dir, s.port, err, s.logPath, logTail(s.logPath, offset))
	}
	go s.reportExit()
	s.log.Info("pgserver: postgres ready", "pid", c.pid, "log", s.logPath)
	return nil
}

// reportExit logs an exit that Stop did not ask for. It ends with the child.
func (s *Server) reportExit() {
	<-s.child.done
	if !s.stopping.Load() {
		s.log.Error("pgserver: postgres exited unexpectedly", "pid", s.child.pid, "err", s.child.err, "log", s.logPath)
	}
}

// waitReady polls a connection until one reaches our postmaster, the child
// exits (ErrExited) or ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	const maxDelay = 200 * time.Millisecond
	delay := 10 * time.Millisecond
	var refusedSince time.Time
	for {
		err := s.probe(ctx)
		if err == nil {
			return nil
		}
		if isAuthError(err) {
			if refusedSince.IsZero() {
				refusedSince = time.Now()
			} else if time.Since(refusedSince) > authGrace {
				return fmt.Errorf("the server refused the superuser's password from %s (%w): "+
					"if that file is older than the cluster, delete its %s line and start again (keiline then sets a new password)",
					s.passFile, err, superuser)
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-s.child.done:
			t.Stop()
			return fmt.Errorf("%w during startup (%v)", ErrExited, s.child.err)
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("not ready: %w (last attempt: %v)", ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, maxDelay)
	}
}

// probe connects once and checks that the server is ours: with a fixed
// port, another server may answer there until our postmaster fails to bind.
// The attempt is abandoned when the child exits, so that a port held by a
// silent listener does not delay the report.
func (s *Server) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-s.child.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() { cancel(); <-watched }()

	conn, err := pgx.Connect(ctx, s.AdminURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var dataDir string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dataDir); err != nil {
		return err
	}
	if !sameDir(dataDir, s.dir) {
		return fmt.Errorf("port %d is served by another cluster (data directory %s)", s.port, dataDir)
	}
	return nil
}

// isAuthError reports whether err is the server refusing a login: a wrong
// or missing password (28P01) or no pg_hba.conf line (28000).
func isAuthError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000")
}

// URL returns the connection URL of database as the superuser, e.g.
// postgres://postgres@127.0.0.1:41234/app?passfile=%2Fstate%2Fsecrets%2Fpg.pgpass&sslmode=disable.
// It holds no password: pgx (and libpq) read it from the password file the
// passfile parameter names. With Config.TLS it asks for sslmode=verify-full
// against TLS.CAFile, or sslmode=require without a CAFile.
func (s *Server) URL(database string) string {
	q := url.Values{"passfile": {string(s.passFile)}, "sslmode": {"disable"}}
	if s.tls != nil {
		q.Set("sslmode", "require")
		if s.tls.CAFile != "" {
			q.Set("sslmode", "verify-full")
			q.Set("sslrootcert", s.tls.CAFile)
		}
	}
	return clientURL(s.port, database, q)
}

// ClientURL returns the URL of database as the superuser of the cluster in
// dataDir served on port (see Running and Serving) when it was started
// with the default password file and without TLS, as Server.URL would.
func ClientURL(dataDir string, port int, database string) string {
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	return clientURL(port, database, url.Values{"passfile": {DefaultPassFile(dataDir)}, "sslmode": {"disable"}})
}

func clientURL(port int, database string, q url.Values) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort(passHost, strconv.Itoa(port)),
		Path:     "/" + database,
		RawQuery: q.Encode(),
	}
	return u.String()
}

// PassFile returns the cluster's password file (Config.PassFile): the
// superuser's line, and the lines of the roles others provisioned.
func (s *Server) PassFile() pgauth.File { return s.passFile }

// AdminURL returns URL("postgres"), the maintenance database.
func (s *Server) AdminURL() string { return s.URL("postgres") }

// Port returns the TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Dir returns the absolute data directory.
func (s *Server) Dir() string { return s.dir }

// LogPath returns the file the server log is appended to: the postmaster's
// stdout and stderr, plus one line from keiline at each start.
func (s *Server) LogPath() string { return s.logPath }

// Done returns a channel that is closed when the postmaster has exited,
// after Stop or on its own.
func (s *Server) Done() <-chan struct{} { return s.child.done }

// CreateDatabase creates database name owned by the superuser. It is
// idempotent: an existing database is not an error.
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	if name == "" {
		return fmt.Errorf("pgserver: port %d: create database: empty name", s.port)
	}
	conn, err := pgx.Connect(ctx, s.AdminURL())
	if err != nil {
		return fmt.Errorf("pgserver: port %d: create database %s: %w", s.port, name, err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || // duplicate_database
		// A concurrent CREATE DATABASE of the same name can lose on the
		// catalog's unique index instead.
		pgErr.Code == "23505" && pgErr.ConstraintName == "pg_database_datname_index") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgserver: port %d: create database %s: %w", s.port, name, err)
	}
	return nil
}

// Stop shuts the server down fast (SIGINT: roll back open transactions,
// checkpoint) and waits for the postmaster to exit. After cfg.StopTimeout, or
// when ctx ends first, it kills the postmaster with SIGKILL and returns an
// error; the next Start recovers the data from the WAL. Stop returns an
// error wrapping ErrExited if postgres had already exited on its own. It is
// safe to call twice and concurrently, and on a nil *Server; later calls
// return the first call's result.
func (s *Server) Stop(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.stopOnce.Do(func() { s.stopErr = s.stop(ctx) })
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	s.stopping.Store(true)
	select {
	case <-s.child.done:
		return fmt.Errorf("pgserver: dir %s port %d: %w before Stop (pid %d: %v); log %s",
			s.dir, s.port, ErrExited, s.child.pid, s.child.err, s.logPath)
	default:
	}
	s.log.Info("pgserver: stopping postgres", "pid", s.child.pid)
	if err := s.child.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgserver: dir %s port %d: signal pid %d: %w", s.dir, s.port, s.child.pid, err)
	}
	t := time.NewTimer(s.stopTimeout)
	defer t.Stop()
	var why error
	select {
	case <-s.child.done:
		if err := s.child.err; err != nil {
			return fmt.Errorf("pgserver: dir %s port %d: %w during shutdown: %v; log %s", s.dir, s.port, ErrExited, err, s.logPath)
		}
		s.log.Info("pgserver: postgres stopped")
		return nil
	case <-t.C:
		why = fmt.Errorf("no exit within %v", s.stopTimeout)
	case <-ctx.Done():
		why = ctx.Err()
	}
	s.kill()
	return fmt.Errorf("pgserver: dir %s port %d: fast shutdown of pid %d: %w; killed it", s.dir, s.port, s.child.pid, why)
}

// terminate sends sig and waits up to timeout for the exit, then kills.
func (s *Server) terminate(sig syscall.Signal, timeout time.Duration) {
	_ = s.child.cmd.Process.Signal(sig)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-s.child.done:
	case <-t.C:
		s.kill()
	}
}

// kill sends SIGKILL and waits for the exit, which SIGKILL guarantees.
func (s *Server) kill() {
	_ = s.child.cmd.Process.Kill()
	<-s.child.done
}

// child is a started process and the goroutine that waits for it.
type child struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result; read after done is closed
}

// startChild starts cmd from a goroutine locked to its OS thread and keeps
// that goroutine, and so the thread, until the process exits. This matters
// because the kernel sends the parent-death signal (Pdeathsig) when the
// thread that forked the child exits, not only when our process does: had
// the fork run on a thread the runtime later destroys (one that a goroutine
// exited while locked to), postgres would be killed at a random moment.
// The goroutine ends when the process exits.
func startChild(cmd *exec.Cmd) (*child, error) {
	c := &child{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		c.pid = cmd.Process.Pid
		started <- nil
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}
