package sequence

import (
	"os"
	"testing"
)

// mustParseFile parses a CSPLib instance from testdata.
func mustParseFile(t testing.TB, path string) *Problem {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := ParseCSPLib(f)
	if err != nil {
		t.Fatalf("%s:%v", path, err)
	}
	return p
}
