// Package pgtest gives each test a fresh, empty PostgreSQL database.
//
// Tests use the server named by the environment variable KEILINE_TEST_DB (an
// admin URL, e.g. postgres://postgres:PASSWORD@127.0.0.1:5433/postgres, of
// a PostgreSQL 13 or newer where the user may create databases and roles;
// its password in the URL or in PGPASSFILE), or else one private cluster
// per test binary, started on first use with schema/pgserver in a
// directory under os.TempDir() and removed by Main.
//
// Either way the roles keiline logs in as (schema.LoginRoles) get LOGIN
// and a password (schema.ProvisionLogins) before the first test, and the
// URLs NewDB returns name a password file holding them (the passfile
// parameter), so schema.OpenAs(ctx, NewDB(t), role) connects as role with
// its password, as keiline's parts do. On a KEILINE_TEST_DB server the
// roles' passwords are derived from the admin URL, so test binaries that
// share the server at once agree on them.
//
// A package's tests opt in with
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and call NewDB in each test that needs a database.
package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
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

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgauth"
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
	clusterTmp string           // holds the private cluster's data directory, or EnvTestDB's password file
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
			errs = append(errs, fmt.Errorf("remove %s: %w", clusterTmp, err))
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

// setup picks the server — EnvTestDB, or a private cluster it starts —
// and provisions the login roles.
func setup(verbose bool) error {
	tmp, err := os.MkdirTemp("", "keiline-pgtest-")
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	clusterTmp = tmp
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	var pass pgauth.File
	if u := os.Getenv(EnvTestDB); u != "" {
		if adminURL, pass, err = externalServer(u, tmp); err != nil {
			return fmt.Errorf("%s: %w", EnvTestDB, err)
		}
	} else {
		logger := slog.New(slog.DiscardHandler)
		if verbose {
			logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		// pgserver makes tmp (0700, ours, below os.TempDir) traversable for
		// the postgres user when the tests run as root.
		s, err := pgserver.Start(ctx, pgserver.Config{Dir: filepath.Join(tmp, "data"), Logger: logger})
		if err != nil {
			return fmt.Errorf("private cluster (set %s to use an existing server): %w", EnvTestDB, err)
		}
		srv = s
		adminURL, pass = s.AdminURL(), s.PassFile()
	}
	if err := schema.ProvisionLogins(ctx, adminURL, pass); err != nil {
		return err
	}
	return nil
}

// externalServer returns the admin URL of an EnvTestDB server with a
// passfile parameter naming a password file in dir that holds the admin's
// password (from the URL or PGPASSFILE) and the login roles' passwords,
// derived from the admin URL.
func externalServer(rawURL, dir string) (string, pgauth.File, error) {
	if _, err := databaseURL(rawURL, "postgres"); err != nil {
		return "", "", err
	}
	cfg, err := schema.ConnConfig(rawURL, "")
	if err != nil {
		return "", "", err
	}
	c := cfg.ConnConfig
	pass := pgauth.File(filepath.Join(dir, "pgpass"))
	if c.Password != "" {
		if err := pass.Set(c.Host, c.User, c.Password); err != nil {
			return "", "", err
		}
	}
	for _, role := range schema.LoginRoles {
		sum := sha256.Sum256([]byte("keiline pgtest login\x00" + c.Password + "\x00" + rawURL + "\x00" + role))
		if err := pass.Set(c.Host, role, base64.RawURLEncoding.EncodeToString(sum[:])); err != nil {
			return "", "", err
		}
	}
	u, _ := url.Parse(rawURL)
	q := u.Query()
	q.Set("passfile", string(pass))
	u.RawQuery = q.Encode()
	return u.String(), pass, nil
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
