package pgserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keiline/keiline/schema/pgauth"
	"go.uber.org/goleak"
)

// helperEnv makes the test binary act as a keiline process that starts a
// server on the named directory, prints "pid port" and blocks until killed.
const helperEnv = "PGSERVER_TEST_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(runHelper(dir))
	}
	code := m.Run()
	if templateRoot != "" {
		_ = os.RemoveAll(templateRoot)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "pgserver: leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// A cluster made once by Start and stopped, copied by tests that need a
// data directory but not a fresh initdb (initdb costs seconds of CPU).
var (
	templateOnce sync.Once
	templateRoot string
	templateDir  string
	templateErr  error
)

// copyOfTemplate returns a new data directory, a copy of the template owned
// by the test process (so Start must give it to the postgres user).
func copyOfTemplate(t *testing.T) string {
	t.Helper()
	templateOnce.Do(func() {
		if templateRoot, templateErr = os.MkdirTemp("", "pgserver-template-"); templateErr != nil {
			return
		}
		templateDir = filepath.Join(templateRoot, "pgdata")
		ctx, cancel := context.WithTimeout(context.Background(), StartTimeoutDefault)
		defer cancel()
		var s *Server
		if s, templateErr = Start(ctx, Config{Dir: templateDir, Logger: slog.New(slog.DiscardHandler)}); templateErr == nil {
			templateErr = s.Stop(ctx)
		}
	})
	if templateErr != nil {
		t.Fatalf("template cluster: %v", templateErr)
	}
	dst := filepath.Join(t.TempDir(), "pgdata")
	err := filepath.WalkDir(templateDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(templateDir, path)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Mkdir(target, info.Mode().Perm())
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, src); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy template: %v", err)
	}
	// The copy's superuser password, where Start looks for it.
	pw, err := templatePass().Password(passHost, superuser)
	if err == nil {
		err = pgauth.File(DefaultPassFile(dst)).Set(passHost, superuser, pw)
	}
	if err != nil {
		t.Fatalf("copy template: %v", err)
	}
	return dst
}

func templatePass() pgauth.File { return pgauth.File(DefaultPassFile(templateDir)) }

func runHelper(dir string) int {
	s, err := Start(context.Background(), Config{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%d %d\n", s.child.pid, s.Port())
	// Wait to be killed; EOF on stdin means the test is gone.
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = s.Stop(context.Background())
	return 0
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func startT(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}

func connectT(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func execT(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func countT(t *testing.T, conn *pgx.Conn, sql string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(t.Context(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// waitGone polls until pid no longer runs (zombies count as gone).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still running", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

func TestStartCreateQueryRestart(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pgdata")
	s := startT(t, Config{Dir: dir})

	if s.Port() == 0 || s.Port() == 5432 {
		t.Fatalf("Port() = %d, want a picked port other than 5432", s.Port())
	}
	pass := url.QueryEscape(filepath.Join(filepath.Dir(dir), "secrets", "pgdata.pgpass"))
	if want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?passfile=%s&sslmode=disable", s.Port(), pass); s.AdminURL() != want {
		t.Errorf("AdminURL() = %q, want %q", s.AdminURL(), want)
	}
	if got := ClientURL(dir, s.Port(), "postgres"); got != s.AdminURL() {
		t.Errorf("ClientURL() = %q, want AdminURL() %q", got, s.AdminURL())
	}
	if os.Geteuid() == 0 {
		if uid := procUID(t, s.child.pid); uid == 0 {
			t.Errorf("postmaster runs as root")
		}
	}
	for range 2 { // idempotent
		if err := s.CreateDatabase(t.Context(), "line-1"); err != nil {
			t.Fatalf("CreateDatabase: %v", err)
		}
	}
	conn := connectT(t, s.URL("line-1"))
	execT(t, conn, "CREATE TABLE station (id text PRIMARY KEY)")
	execT(t, conn, "INSERT INTO station VALUES ('weld-10'), ('paint-20')")
	var encoding, listen, sockets string
	if err := conn.QueryRow(t.Context(), "SELECT current_setting('server_encoding'), current_setting('listen_addresses'), current_setting('unix_socket_directories')").Scan(&encoding, &listen, &sockets); err != nil {
		t.Fatal(err)
	}
	if encoding != "UTF8" || listen != "127.0.0.1" || sockets != "" {
		t.Errorf("settings: encoding %q listen %q sockets %q; want UTF8, 127.0.0.1, empty", encoding, listen, sockets)
	}
	_ = conn.Close(t.Context())

	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("postmaster.pid after Stop: %v", err)
	}

	s2 := startT(t, Config{Dir: dir})
	conn2 := connectT(t, s2.URL("line-1"))
	if n := countT(t, conn2, "SELECT count(*) FROM station"); n != 2 {
		t.Errorf("after restart: %d stations, want 2", n)
	}
	log, err := os.ReadFile(s2.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "# keiline pgserver: starting postgres"); n != 2 {
		t.Errorf("log %s has %d start lines, want 2", s2.LogPath(), n)
	}
}

func procUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			uid, _ := strconv.Atoi(strings.Fields(rest)[1]) // effective
			return uid
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return -1
}

func TestStartRefusesDirInUse(t *testing.T) {
	t.Parallel()
	dir := copyOfTemplate(t)
	s := startT(t, Config{Dir: dir})

	_, err := Start(t.Context(), Config{Dir: dir, Logger: testLogger(t)})
	if !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Start on a served dir: %v, want ErrAlreadyRunning", err)
	}
	if pid := strconv.Itoa(s.child.pid); !strings.Contains(err.Error(), pid) {
		t.Errorf("error %q does not name pid %s", err, pid)
	}
	conn := connectT(t, s.AdminURL()) // the first server is unharmed
	if n := countT(t, conn, "SELECT 1"); n != 1 {
		t.Errorf("SELECT 1 = %d", n)
	}
}

func TestStartAfterPostmasterKilled(t *testing.T) {
	t.Parallel()
	dir := copyOfTemplate(t)
	s := startT(t, Config{Dir: dir})
	conn := connectT(t, s.AdminURL())
	execT(t, conn, "CREATE TABLE lot (id int)")
	execT(t, conn, "INSERT INTO lot SELECT generate_series(1, 100)")

	if err := syscall.Kill(s.child.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	if err := s.Stop(t.Context()); !errors.Is(err, ErrExited) {
		t.Errorf("Stop after kill: %v, want ErrExited", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err != nil {
		t.Fatalf("want a stale postmaster.pid for this test: %v", err)
	}

	// Immediately: backends of the killed postmaster may still be attached.
	s2 := startT(t, Config{Dir: dir})
	conn2 := connectT(t, s2.AdminURL())
	if n := countT(t, conn2, "SELECT count(*) FROM lot"); n != 100 {
		t.Errorf("after crash recovery: %d lots, want 100", n)
	}
}

// TestPostmasterDiesWithOwner kills -9 a process that started a server and
// checks that the postmaster goes too and the directory starts again.
func TestPostmasterDiesWithOwner(t *testing.T) {
	t.Parallel()
	dir := copyOfTemplate(t)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.Stderr = t.Output()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Wait()
		t.Fatalf("helper: %v", err)
	}
	var pid, port int
	if _, err := fmt.Sscan(line, &pid, &port); err != nil {
		t.Fatalf("helper said %q: %v", line, err)
	}
	if !processAlive(pid) {
		t.Fatalf("postmaster %d not running", pid)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitGone(t, pid)

	s := startT(t, Config{Dir: dir})
	connectT(t, s.AdminURL())
}

func TestStartPortTaken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		holder func(t *testing.T) int // takes a port and returns it
	}{
		{name: "silent listener", holder: func(t *testing.T) int {
			var lc net.ListenConfig
			l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = l.Close() })
			return l.Addr().(*net.TCPAddr).Port
		}},
		// Our readiness probe reaches the other cluster; it must not count.
		{name: "another cluster", holder: func(t *testing.T) int {
			return startT(t, Config{Dir: copyOfTemplate(t)}).Port()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port := tt.holder(t)
			s, err := Start(t.Context(), Config{Dir: copyOfTemplate(t), Port: port, Logger: testLogger(t)})
			if err == nil {
				_ = s.Stop(t.Context())
			}
			if !errors.Is(err, ErrExited) {
				t.Fatalf("Start on a taken port: %v, want ErrExited", err)
			}
			if !strings.Contains(err.Error(), "could not bind") {
				t.Errorf("error does not quote the server log: %v", err)
			}
		})
	}
}

// TestStartRetriesPickedPort is not parallel: it replaces pickPort.
func TestStartRetriesPickedPort(t *testing.T) {
	dir := copyOfTemplate(t) // before replacing pickPort: it may Start the template
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port

	orig := pickPort
	defer func() { pickPort = orig }()
	calls := 0
	pickPort = func(ctx context.Context) (int, error) {
		calls++
		if calls == 1 {
			return taken, nil
		}
		return orig(ctx)
	}
	s := startT(t, Config{Dir: dir})
	if calls != 2 || s.Port() == taken {
		t.Errorf("picked %d ports, serving on %d (taken %d); want a second port", calls, s.Port(), taken)
	}
}

func TestStartRefusesForeignDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), Config{Dir: dir, Logger: testLogger(t)})
	if !errors.Is(err, ErrNotDataDir) {
		t.Fatalf("Start on a non-empty foreign dir: %v, want ErrNotDataDir", err)
	}
}

func TestStopNil(t *testing.T) {
	var s *Server
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("nil Stop: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" means valid
	}{
		{name: "minimal", cfg: Config{Dir: "/x"}},
		{name: "fixed port", cfg: Config{Dir: "/x", Port: 15432}},
		{name: "no dir", cfg: Config{}, wantErr: "Config.Dir"},
		{name: "negative port", cfg: Config{Dir: "/x", Port: -1}, wantErr: "Config.Port"},
		{name: "port too big", cfg: Config{Dir: "/x", Port: 70000}, wantErr: "Config.Port"},
		{name: "negative start timeout", cfg: Config{Dir: "/x", StartTimeout: -time.Second}, wantErr: "Config.StartTimeout"},
		{name: "negative stop timeout", cfg: Config{Dir: "/x", StopTimeout: -time.Second}, wantErr: "Config.StopTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestFindBinDir(t *testing.T) {
	root := t.TempDir()
	mkBin := func(dir string) string {
		for _, name := range []string{"initdb", "postgres"} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	debian := filepath.Join(root, "lib")
	v96 := mkBin(filepath.Join(debian, "9.6", "bin"))
	v13 := mkBin(filepath.Join(debian, "13", "bin"))
	v15 := mkBin(filepath.Join(debian, "15", "bin"))
	if err := os.MkdirAll(filepath.Join(debian, "16", "bin"), 0o755); err != nil { // client only
		t.Fatal(err)
	}
	local := mkBin(filepath.Join(root, "local"))
	empty := filepath.Join(root, "empty")

	notFound := func(string) (string, error) { return "", exec.ErrNotFound }
	pathHas := func(files map[string]string) func(string) (string, error) {
		return func(f string) (string, error) {
			if p, ok := files[f]; ok {
				return p, nil
			}
			return "", exec.ErrNotFound
		}
	}
	pgConfigSays := func(dir string) func(context.Context, string) (string, error) {
		return func(context.Context, string) (string, error) { return dir, nil }
	}
	tests := []struct {
		name    string
		bs      binSearch
		want    string
		wantErr error
	}{
		{name: "configured wins", bs: binSearch{configured: local, dataMajor: "13", root: debian, lookPath: notFound}, want: local},
		{name: "configured without binaries", bs: binSearch{configured: empty, root: debian, lookPath: notFound}, wantErr: ErrNoBinaries},
		{name: "data directory's version first", bs: binSearch{dataMajor: "9.6", root: debian,
			lookPath: pathHas(map[string]string{"pg_config": "/pg_config"}), pgConfig: pgConfigSays(v15)}, want: v96},
		{name: "pg_config", bs: binSearch{root: debian,
			lookPath: pathHas(map[string]string{"pg_config": "/pg_config"}), pgConfig: pgConfigSays(v13)}, want: v13},
		{name: "pg_config of a client-only install is skipped", bs: binSearch{root: debian,
			lookPath: pathHas(map[string]string{"pg_config": "/pg_config"}), pgConfig: pgConfigSays(filepath.Join(debian, "16", "bin"))}, want: v15},
		{name: "highest version, numerically", bs: binSearch{root: debian, lookPath: notFound}, want: v15},
		{name: "initdb on PATH", bs: binSearch{root: empty,
			lookPath: pathHas(map[string]string{"initdb": filepath.Join(local, "initdb")})}, want: local},
		{name: "nothing", bs: binSearch{root: empty, lookPath: notFound}, wantErr: ErrNoBinaries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := findBinDir(t.Context(), tt.bs)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("findBinDir() = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestIsStrictlyUnder(t *testing.T) {
	tests := []struct {
		path, root string
		want       bool
	}{
		{"/tmp/a", "/tmp", true},
		{"/tmp/a/b", "/tmp", true},
		{"/tmp", "/tmp", false},
		{"/tmpx", "/tmp", false},
		{"/", "/tmp", false},
		{"/tmp/..a", "/tmp", true},
	}
	for _, tt := range tests {
		if got := isStrictlyUnder(tt.path, tt.root); got != tt.want {
			t.Errorf("isStrictlyUnder(%q, %q) = %v, want %v", tt.path, tt.root, got, tt.want)
		}
	}
}

// TestStartAsNobody is not parallel: it replaces runAsUsers.
func TestStartAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the run-as user is only chosen when running as root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	orig := runAsUsers
	defer func() { runAsUsers = orig }()
	runAsUsers = []string{"keiline-no-such-user", "nobody"}

	s := startT(t, Config{Dir: copyOfTemplate(t)})
	if uid := procUID(t, s.child.pid); strconv.Itoa(uid) != nobody.Uid {
		t.Errorf("postmaster runs as uid %d, want nobody (%s)", uid, nobody.Uid)
	}
}
