package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoBinaries is returned by Start when no directory holding the
// PostgreSQL server binaries (initdb and postgres) is found.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found: " +
	"install Debian's postgresql package (apt-get install postgresql) or set Config.BinDir")

// debianRoot is where Debian installs one bin directory per major version.
const debianRoot = "/usr/lib/postgresql"

// binSearch is where findBinDir looks; tests replace the outside world.
type binSearch struct {
	configured string // Config.BinDir
	dataMajor  string // PG_VERSION of an existing data directory, or ""
	root       string // debianRoot
	lookPath   func(file string) (string, error)
	pgConfig   func(ctx context.Context, path string) (string, error)
}

func defaultBinSearch(configured, dataDir string) binSearch {
	major := ""
	if b, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		major = strings.TrimSpace(string(b))
	}
	return binSearch{
		configured: configured,
		dataMajor:  major,
		root:       debianRoot,
		lookPath:   exec.LookPath,
		pgConfig: func(ctx context.Context, path string) (string, error) {
			out, err := exec.CommandContext(ctx, path, "--bindir").Output()
			return string(bytes.TrimSpace(out)), err
		},
	}
}

// findBinDir returns the directory holding initdb and postgres. Order: the
// configured directory (an error if it lacks the binaries); the Debian
// directory of the data directory's major version, so that installing a
// newer major version does not break an existing cluster; `pg_config
// --bindir`; the highest version under /usr/lib/postgresql/*/bin; the
// directory of initdb on PATH (symlinks resolved). It returns ErrNoBinaries
// when none qualifies.
func findBinDir(ctx context.Context, bs binSearch) (string, error) {
	if bs.configured != "" {
		if !hasServerBinaries(bs.configured) {
			return "", fmt.Errorf("Config.BinDir %s: no initdb and postgres there: %w", bs.configured, ErrNoBinaries)
		}
		return bs.configured, nil
	}
	if bs.dataMajor != "" {
		if dir := filepath.Join(bs.root, bs.dataMajor, "bin"); hasServerBinaries(dir) {
			return dir, nil
		}
	}
	if path, err := bs.lookPath("pg_config"); err == nil {
		// pg_config from libpq-dev alone names a bin dir without initdb.
		if dir, err := bs.pgConfig(ctx, path); err == nil && dir != "" && hasServerBinaries(dir) {
			return dir, nil
		}
	}
	if dir := highestDebianBinDir(bs.root); dir != "" {
		return dir, nil
	}
	if path, err := bs.lookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(path); err == nil && hasServerBinaries(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if hasServerBinaries(filepath.Dir(path)) {
			return filepath.Dir(path), nil
		}
	}
	return "", ErrNoBinaries
}

// highestDebianBinDir returns root/<version>/bin of the highest version
// (compared numerically: 9.6 < 13 < 15) that holds the binaries, or "".
func highestDebianBinDir(root string) string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return ""
	}
	type candidate struct {
		version []int
		dir     string
	}
	var cands []candidate
	for _, e := range entries {
		v, ok := parseVersion(e.Name())
		if !ok {
			continue
		}
		dir := filepath.Join(root, e.Name(), "bin")
		if hasServerBinaries(dir) {
			cands = append(cands, candidate{v, dir})
		}
	}
	if len(cands) == 0 {
		return ""
	}
	best := slices.MaxFunc(cands, func(a, b candidate) int { return slices.Compare(a.version, b.version) })
	return best.dir
}

func parseVersion(s string) ([]int, bool) {
	var v []int
	for part := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, false
		}
		v = append(v, n)
	}
	return v, true
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}
