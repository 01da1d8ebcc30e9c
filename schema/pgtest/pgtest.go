// Package pgtest gives each test a fresh, empty PostgreSQL database.
//
// Tests use the server named by the environment variable KEILINE_TEST_DB (an
// admin URL, e.g. postgres://postgres@127.0.0.1:5433/postgres, of a
// PostgreSQL 13 or newer where the user may create databases), or else one
// private cluster per test binary, started on first use with
// schema/pgserver in a directory under os.TempDir() and removed by Main.
//
// A package's tests opt in with
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and call NewDB in each test that needs a database.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keiline/keiline/schema/pgserver"
)

// EnvTestDB names the environment variable holding the admin URL of an
// existing server to create test databases on.
const EnvTestDB = "KEILINE_TEST_DB"

// Timeouts of the helpers.
const (
	// StartTimeout bounds starting the private cluster, initdb included.
	StartTimeout = 2 * time.Minute
	// OpTimeout bounds creating or dropping one database.
	OpTimeout = 30 * time.Second
)

// maxIdentLen is PostgreSQL's limit on identifiers (NAMEDATALEN-1 bytes).
const maxIdentLen = 63

var (
	mainCalled atomic.Bool
	seq        atomic.Int64

	setupOnce  sync.Once
	adminURL   string
	setupErr   error
	srv        *pgserver.Server // nil when EnvTestDB is used
	clusterTmp string           // holds the private cluster's data directory
)

// Main runs m and then stops the private cluster, if one was started, and
// removes its directory. Call it from TestMain: os.Exit(pgtest.Main(m)).
// It returns m.Run's code, or 1 if the tests passed but the cleanup failed.
func Main(m *testing.M) int {
	mainCalled.Store(true)
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func shutdown() error {
	var errs []error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), pgserver.StopTimeoutDefault)
		defer cancel()
		errs = append(errs, srv.Stop(ctx))
	}
	if clusterTmp != "" {
		if err := os.RemoveAll(clusterTmp); err != nil {
			errs = append(errs, fmt.Errorf("remove private cluster: %w", err))
		}
	}
	return errors.Join(errs...)
}

// NewDB creates an empty database for t and returns its URL. The database
// is dropped when t and its subtests have finished (even when t failed;
// connections still open then are terminated). NewDB fails t when Main is
// not running the tests or no server can be had.
func NewDB(t testing.TB) string {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: NewDB needs TestMain to call os.Exit(pgtest.Main(m))")
	}
	setupOnce.Do(func() { setupErr = setup(testing.Verbose()) })
	if setupErr != nil {
		t.Fatalf("pgtest: %v", setupErr)
	}
	name := dbName(t.Name(), os.Getpid(), seq.Add(1))
	dbURL, err := databaseURL(adminURL, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), OpTimeout)
	defer cancel()
	if err := admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), OpTimeout)
		defer cancel()
		if err := admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return dbURL
}

// setup picks the server: EnvTestDB, or a private cluster it starts.
func setup(verbose bool) error {
	if u := os.Getenv(EnvTestDB); u != "" {
		if _, err := databaseURL(u, "postgres"); err != nil {
			return fmt.Errorf("%s: %w", EnvTestDB, err)
		}
		adminURL = u
		return nil
	}
	tmp, err := os.MkdirTemp("", "keiline-pgtest-")
	if err != nil {
		return fmt.Errorf("private cluster: %w", err)
	}
	clusterTmp = tmp
	logger := slog.New(slog.DiscardHandler)
	if verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	// pgserver makes tmp (0700, ours, below os.TempDir) traversable for the
	// postgres user when the tests run as root.
	s, err := pgserver.Start(ctx, pgserver.Config{Dir: filepath.Join(tmp, "data"), Logger: logger})
	if err != nil {
		return fmt.Errorf("private cluster (set %s to use an existing server): %w", EnvTestDB, err)
	}
	srv = s
	adminURL = s.AdminURL()
	return nil
}

// admin runs sql on the admin database.
func admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// dbName returns "t_<test name>_<pid>_<n>": lowercase letters, digits and
// underscores, at most 63 bytes, the test name shortened to fit. The pid
// keeps parallel test binaries apart on a shared server.
func dbName(testName string, pid int, n int64) string {
	suffix := "_" + strconv.Itoa(pid) + "_" + strconv.FormatInt(n, 10)
	var b strings.Builder
	b.WriteString("t_")
	last := byte('_')
	for _, r := range strings.ToLower(testName) {
		c := byte('_')
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			c = byte(r)
		}
		if c == '_' && last == '_' {
			continue
		}
		b.WriteByte(c)
		last = c
	}
	name := strings.TrimRight(b.String(), "_")
	if room := maxIdentLen - len(suffix); len(name) > room {
		name = strings.TrimRight(name[:room], "_")
	}
	return name + suffix
}

// databaseURL returns admin with its database replaced by name. admin must
// be a postgres:// or postgresql:// URL.
func databaseURL(admin, name string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return "", fmt.Errorf("admin URL %q: want postgres://user@host:port/database", redact(admin))
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// redact hides a password in a URL for error messages.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}
