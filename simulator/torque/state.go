package torque

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Files of a controller's state dir.
const (
	resultsFile = "results.jsonl" // every tightening, appended as made (WriteTruth's format)
	stateFile   = "state.json"    // the rest of the state, rewritten on change
)

// state is the controller's retentive memory.
type state struct {
	NextID       uint32    `json:"next_id"`
	Pset         int       `json:"pset"`
	PsetChanged  time.Time `json:"pset_changed"`
	VIN          string    `json:"vin"`
	Enabled      bool      `json:"enabled"`
	BatchCounter int       `json:"batch_counter"`
	// Queue holds the ids of results to push to the subscriber, oldest
	// first: made while a client was subscribed and not acknowledged yet.
	Queue []uint32 `json:"queue"`

	results []Tightening
}

func newState(enabled bool) state { return state{NextID: 1, Enabled: enabled} }

// store keeps a state in a directory.
type store struct {
	dir     string
	results *os.File
}

// openStore opens (or makes) dir and loads the state it holds.
func openStore(dir string, enabled bool) (*store, state, error) {
	st := newState(enabled)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, st, fmt.Errorf("state dir: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, st, fmt.Errorf("state: %w", err)
	default:
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, st, fmt.Errorf("state %s: %w", filepath.Join(dir, stateFile), err)
		}
	}
	path := filepath.Join(dir, resultsFile)
	b, err = os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, st, fmt.Errorf("results: %w", err)
	}
	if st.results, err = ReadTruth(bytes.NewReader(b)); err != nil {
		return nil, st, fmt.Errorf("results %s: %w", path, err)
	}
	for _, t := range st.results {
		st.NextID = max(st.NextID, t.ID+1)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, st, fmt.Errorf("results: %w", err)
	}
	return &store{dir: dir, results: f}, st, nil
}

// append keeps a new tightening.
func (s *store) append(t Tightening) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if _, err := s.results.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("keep tightening %d: %w", t.ID, err)
	}
	return nil
}

// save rewrites the state file (write and rename, so a crash leaves the
// old or the new one).
func (s *store) save(st state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir, stateFile))
}

func (s *store) close() error { return s.results.Close() }
