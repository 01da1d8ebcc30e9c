package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgauth"
	"github.com/keiline/keiline/schema/pgserver"
	"golang.org/x/sys/unix"
)

// StateDirDefault is where `keiline up` keeps its state.
const StateDirDefault = ".keiline"

// stateFile remembers, in a state dir, the services `up` uses, so tools
// given --state find the same database and NATS.
type stateFile struct {
	DBURL string `json:"db_url,omitempty"`
	// NATSURL is the NATS up runs on (its embedded server's, or --nats),
	// NATSSecurity the directory of its parts' identities ("" without).
	NATSURL      string `json:"nats_url,omitempty"`
	NATSSecurity string `json:"nats_security,omitempty"`
}

func readState(dir string) (stateFile, error) {
	var s stateFile
	b, err := os.ReadFile(filepath.Join(dir, "keiline.json"))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", filepath.Join(dir, "keiline.json"), err)
	}
	return s, nil
}

func writeState(dir string, s stateFile) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "keiline.json"), append(b, '\n'), 0o600)
}

// database is a database URL and how to let go of it.
type database struct {
	URL  string
	stop func(ctx context.Context) error
}

func (d *database) Close(ctx context.Context) error {
	if d == nil || d.stop == nil {
		return nil
	}
	return d.stop(ctx)
}

// openDatabase finds the database: the URL given, else the one the state
// dir remembers, else the state dir's private cluster — used as it is when
// another keiline process runs it, started (and stopped by Close)
// otherwise. The private cluster's URL names its password file
// (<state>/secrets/pg.pgpass), and the roles keiline logs in as get their
// passwords there (schema.ProvisionLogins, at every open: it keeps them).
// A given URL is used as it is: its roles' passwords are the operator's
// (docs/security.md).
func openDatabase(ctx context.Context, url, state string, log *slog.Logger) (*database, error) {
	if url != "" {
		return &database{URL: url}, nil
	}
	if state == "" {
		return nil, errors.New("no database: give --db URL (or KEILINE_DB) or --state DIR")
	}
	sf, err := readState(state)
	if err != nil {
		return nil, err
	}
	if sf.DBURL != "" {
		return &database{URL: sf.DBURL}, nil
	}
	dir := filepath.Join(state, "pg")
	// Parts started together on one state dir (a tracker, a trace, serve)
	// must not make the cluster twice: the first starts it, the others
	// wait for it and then use it.
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(state, "pg.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if port, ok := pgserver.Serving(ctx, dir); ok {
		u := privateURL(dir, port)
		if err := schema.ProvisionLogins(ctx, u, pgauth.File(pgserver.DefaultPassFile(dir))); err != nil {
			return nil, fmt.Errorf("private PostgreSQL in %s: %w", dir, err)
		}
		return &database{URL: u}, nil
	}
	srv, err := pgserver.Start(ctx, pgserver.Config{Dir: dir, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("private PostgreSQL in %s: %w", dir, err)
	}
	if err := srv.CreateDatabase(ctx, "keiline"); err != nil {
		_ = srv.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := schema.ProvisionLogins(ctx, srv.URL("keiline"), srv.PassFile()); err != nil {
		_ = srv.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("private PostgreSQL in %s: %w", dir, err)
	}
	return &database{URL: srv.URL("keiline"), stop: srv.Stop}, nil
}

// privateURL is the URL of the keiline database of the private cluster in
// dataDir, served on port, as its superuser (password in its password file).
func privateURL(dataDir string, port int) string {
	return pgserver.ClientURL(dataDir, port, "keiline")
}

// lockFile takes an exclusive lock on the file at path (made if missing),
// waiting while another process holds it, until ctx is done. unlock
// releases it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
