package pgserver

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Users that initdb and postgres run as when this process is root (both
// refuse to run as root). The first that exists is used.
var runAsUsers = []string{"postgres", "nobody"}

// account is the unprivileged user that runs initdb and postgres when this
// process is root. A nil *account means: run them as ourselves.
type account struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32 // supplementary groups, including gid
}

// lookupAccount returns nil when this process is not root, else the first
// of runAsUsers that exists.
func lookupAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range runAsUsers {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("pgserver: user %s: uid %q gid %q are not numeric", name, u.Uid, u.Gid)
		}
		a := &account{name: name, uid: uint32(uid), gid: uint32(gid), groups: []uint32{uint32(gid)}}
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if g, err := strconv.ParseUint(id, 10, 32); err == nil && !slices.Contains(a.groups, uint32(g)) {
					a.groups = append(a.groups, uint32(g))
				}
			}
		}
		return a, nil
	}
	return nil, fmt.Errorf("pgserver: running as root, but none of the users %v exists to run postgres as (postgres refuses root)", runAsUsers)
}

// sysProcAttr returns the attributes for initdb and postgres: their own
// process group (a terminal's Ctrl-C reaches only us; we shut postgres down
// in order), SIGKILL when the creating OS thread dies, and a, if any.
func (a *account) sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if a != nil {
		attr.Credential = &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}
	}
	return attr
}

// chown gives path to a; a no-op when a is nil.
func (a *account) chown(path string) error {
	if a == nil {
		return nil
	}
	if err := os.Lchown(path, int(a.uid), int(a.gid)); err != nil {
		return fmt.Errorf("pgserver: chown %s to %s: %w", path, a.name, err)
	}
	return nil
}

// ensureOwned gives dir and everything in it to a when dir itself belongs to
// someone else (for example a data directory copied in by root). Postgres
// refuses a data directory it does not own.
func (a *account) ensureOwned(dir string, log *slog.Logger) error {
	if a == nil {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("pgserver: dir %s: %w", dir, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == a.uid {
		return nil
	}
	log.Info("pgserver: giving data directory to the postgres user", "dir", dir, "user", a.name)
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("pgserver: dir %s: %w", dir, err)
		}
		return a.chown(path)
	})
}

// canSearch reports whether a may traverse the directory described by fi.
func (a *account) canSearch(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == a.uid:
		return perm&0o100 != 0
	case slices.Contains(a.groups, st.Gid):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// ensureTraversable makes every ancestor of dataDir searchable by a, which
// postgres needs to reach its data directory. An ancestor a cannot search
// gets o+x (search only, no listing) when this process owns it and it is
// either dataDir's own parent (the directory the caller chose to hold the
// cluster, e.g. a state directory) or strictly below os.TempDir() (e.g. the
// 0700 directories of t.TempDir). Any other such ancestor is an error that
// names it: we do not widen permissions of directories we were not given.
// It is a no-op when a is nil.
func (a *account) ensureTraversable(dataDir string, log *slog.Logger) error {
	if a == nil {
		return nil
	}
	parent := filepath.Dir(dataDir)
	tmp := os.TempDir()
	if real, err := filepath.EvalSymlinks(tmp); err == nil {
		tmp = real
	}
	euid := uint32(os.Geteuid())
	for p := parent; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgserver: dir %s: %w", dataDir, err)
		}
		if !a.canSearch(fi) {
			st, _ := fi.Sys().(*syscall.Stat_t)
			allowed := p == parent || isStrictlyUnder(p, tmp)
			if !allowed || st == nil || st.Uid != euid {
				return fmt.Errorf("pgserver: dir %s: user %s cannot traverse %s (mode %v): "+
					"grant it o+x or put the data directory elsewhere", dataDir, a.name, p, fi.Mode().Perm())
			}
			if err := os.Chmod(p, fi.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("pgserver: dir %s: make %s traversable for %s: %w", dataDir, p, a.name, err)
			}
			log.Debug("pgserver: added o+x so postgres can reach its data directory", "dir", p)
		}
		if next := filepath.Dir(p); next == p {
			return nil
		}
	}
}

func isStrictlyUnder(path, root string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
