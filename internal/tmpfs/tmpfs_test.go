package tmpfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMountFillFree: a mounted tmpfs fills to ENOSPC, frees on demand, and
// is unmounted by the test's cleanup.
func TestMountFillFree(t *testing.T) {
	var dir string
	t.Run("mounted", func(t *testing.T) {
		dir = Mount(t, 1<<20)
		free := Fill(t, dir)
		if n, err := Free(dir); err != nil || n != 0 {
			t.Fatalf("Free after Fill = %d, %v; want 0", n, err)
		}
		err := os.WriteFile(filepath.Join(dir, "more"), make([]byte, 8192), 0o600)
		if !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("write to a full tmpfs: %v, want ENOSPC", err)
		}
		free()
		if n, err := Free(dir); err != nil || n < 512<<10 {
			t.Fatalf("Free after free() = %d, %v; want most of 1 MiB", n, err)
		}
	})
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), " "+dir+" ") {
		t.Errorf("%s still mounted after the subtest", dir)
	}
}
