package simulator

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadState: whatever the plant's state file holds, loadState returns
// a state that refers only to the line's stations and to cars it framed,
// or an error naming the file; a state it accepts, saved and loaded
// again, is the same.
func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"version":3,"plant":"US1","line":"L1","seed":1,"framed":2,"out":1,"stations":[{"id":"W01","cycle_counter":2,"last_ack":1}]}`))
	f.Add([]byte(`{"version":1,"framed":0,"stations":[]}`))
	f.Add([]byte(`{"version":3,"framed":1,"stations":[null]}`))
	f.Add([]byte(`{"version":3,"framed":1,"stations":[{"id":"W01"},{"id":"W01"}]}`))
	f.Add([]byte(`{"version":3,"framed":1,"manifest_cars":{"5":{}}}`))
	f.Add([]byte(`{"version":9}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, StateFile)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := loadState(Config{Dir: dir})
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name %s", err, path)
			}
			return
		}
		if len(st.Stations) != len(line) || st.Out > st.Framed || st.Framed > CarsMax {
			t.Fatalf("accepted %d stations, framed %d, out %d", len(st.Stations), st.Framed, st.Out)
		}
		for i, s := range st.Stations {
			if s.ID != line[i].ID || s.Car != nil && (s.Car.Index < 1 || s.Car.Index > st.Framed) {
				t.Fatalf("station %d: %+v", i, s)
			}
		}
		saved, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, saved, 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := loadState(Config{Dir: dir})
		if err != nil {
			t.Fatalf("a state it accepted, saved, is refused: %v\n%s", err, saved)
		}
		if b2, _ := json.Marshal(again); !bytes.Equal(b2, saved) {
			t.Fatalf("saved and loaded again differs:\n%s\n%s", saved, b2)
		}
	})
}
