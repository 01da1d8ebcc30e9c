package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadState: whatever a state dir's keiline.json holds, readState
// returns what it says or an error naming the file; what it accepts
// writes back and reads the same.
func FuzzReadState(f *testing.F) {
	f.Add([]byte(`{"db_url":"postgres://keiline_writer@127.0.0.1:5432/keiline","nats_url":"tls://127.0.0.1:4222","nats_security":"/s/nats"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"db_url":1}`))
	f.Add([]byte("{\"db_url\":\"\xff\"}"))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "keiline.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := readState(dir)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name %s", err, path)
			}
			return
		}
		again := t.TempDir()
		if err := writeState(again, s); err != nil {
			t.Fatal(err)
		}
		got, err := readState(again)
		if err != nil || got != s {
			t.Fatalf("state %+v written and read back as %+v (%v)", s, got, err)
		}
	})
}
