package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/keiline/keiline/schema/pgserver"
)

// StateDirDefault is where `keiline up` keeps its state.
const StateDirDefault = ".keiline"

// stateFile remembers, in a state dir, the external services `up` was
// pointed at, so tools given --state find the same database.
type stateFile struct {
	DBURL string `json:"db_url,omitempty"`
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
// another keiline process runs it, started (and stopped by Close) otherwise.
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
	if port, ok := pgserver.Serving(ctx, dir); ok {
		return &database{URL: privateURL(port)}, nil
	}
	srv, err := pgserver.Start(ctx, pgserver.Config{Dir: dir, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("private PostgreSQL in %s: %w", dir, err)
	}
	if err := srv.CreateDatabase(ctx, "keiline"); err != nil {
		_ = srv.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	return &database{URL: srv.URL("keiline"), stop: srv.Stop}, nil
}

// privateURL is the URL of the keiline database of a private cluster.
func privateURL(port int) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/keiline?sslmode=disable", port)
}
