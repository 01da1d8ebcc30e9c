// Package tmpfs gives tests a small filesystem that really fills: a tmpfs
// mounted for the test and unmounted when it ends, and a filler that takes
// its free space. Mounting needs root (CAP_SYS_ADMIN); where it is not
// allowed the test is skipped with a message saying so. Linux only.
package tmpfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mountPrefix starts the name of every mount point, followed by the pid of
// the test process, so that Mount can remove the mounts a killed test
// binary left behind.
const mountPrefix = "keiline-tmpfs-"

// unmountWait bounds how long the cleanup retries an unmount of a busy
// filesystem before it detaches it (MNT_DETACH: gone once unused).
const unmountWait = 10 * time.Second

var (
	sweepOnce sync.Once
	mounts    atomic.Int64
)

// Mount mounts a tmpfs of size bytes on a new directory below t.TempDir()
// and returns the directory. The filesystem is unmounted in t's cleanup,
// which runs even when t fails; a cleanup registered after Mount (a server
// stopping) runs before it. Mount skips t when this process is not root or
// the kernel refuses the mount.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("tmpfs: mounting a small filesystem needs root; run as root (CI does) to test a really full disk")
	}
	sweepOnce.Do(sweep)
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("%s%d-%d", mountPrefix, os.Getpid(), mounts.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+strconv.FormatInt(size, 10)); err != nil {
		t.Skipf("tmpfs: mount a %d-byte tmpfs on %s refused (%v): a container without CAP_SYS_ADMIN? Skipping the full-disk test", size, dir, err)
	}
	t.Cleanup(func() {
		if err := unmount(dir); err != nil {
			t.Errorf("tmpfs: %v", err)
		}
	})
	return dir
}

// unmount unmounts dir, retrying while it is busy, and detaches it lazily
// when it stays busy.
func unmount(dir string) error {
	deadline := time.Now().Add(unmountWait)
	for {
		err := unix.Unmount(dir, 0)
		if err == nil || errors.Is(err, unix.EINVAL) { // EINVAL: not mounted
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
		if time.Now().After(deadline) {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount %s (busy): %w", dir, err)
			}
			return fmt.Errorf("unmount %s: still busy after %v, detached it (a process of the test still holds a file there)", dir, unmountWait)
		}
		time.Sleep(50 * time.Millisecond) // polling until the filesystem is free, with a deadline
	}
}

// sweep detaches the mounts of earlier test binaries that were killed
// before their cleanup ran (a timeout, kill -9).
func sweep() {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		point := fields[4]
		_, rest, ok := strings.Cut(filepath.Base(point), mountPrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue // ours, or its test binary still runs
		}
		_ = unix.Unmount(point, unix.MNT_DETACH)
	}
}

// fillChunk is the size of the filler's writes.
const fillChunk = 64 << 10

// Fill writes a file into dir until its filesystem has no space left and
// returns a function that deletes the file, freeing the space (safe to
// call twice; t's cleanup calls it too). Fill fails t on any error other
// than ENOSPC.
func Fill(t testing.TB, dir string) (free func()) {
	t.Helper()
	f, err := os.CreateTemp(dir, "filler-*")
	if err != nil {
		t.Fatalf("tmpfs: fill %s: %v", dir, err)
	}
	buf := make([]byte, fillChunk)
	for i := range buf {
		buf[i] = byte(i) // not zeros: a filesystem may not store those
	}
	for size := len(buf); size > 0; {
		_, err := f.Write(buf[:size])
		if errors.Is(err, unix.ENOSPC) {
			size /= 2 // take the last pages too
			continue
		}
		if err != nil {
			f.Close()
			t.Fatalf("tmpfs: fill %s: %v", dir, err)
		}
	}
	if err := f.Close(); err != nil && !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("tmpfs: fill %s: %v", dir, err)
	}
	var once sync.Once
	free = func() { once.Do(func() { _ = os.Remove(f.Name()) }) }
	t.Cleanup(free)
	return free
}

// Free returns the bytes free on the filesystem holding dir.
func Free(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("tmpfs: statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}
