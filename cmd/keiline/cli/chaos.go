package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/keiline/keiline/chaos"
)

// runChaos runs the fault campaign and exits non-zero on any loss,
// doubling or change.
func runChaos(ctx context.Context, args []string) error {
	fs := newFlags("chaos")
	seed := fs.Int64("seed", 1, "seed of the plant and of the fault schedule")
	duration := fs.Duration("duration", 2*time.Minute, "length of the fault phase")
	perClass := fs.Int("faults-per-class", chaos.FaultsPerClassDefault, "faults injected of each class")
	speed := fs.Float64("speed", chaos.SpeedDefault, "line speed (takt = 60 s / speed)")
	dir := fs.String("dir", "", "directory for every part's state and logs (default: a new temporary one, kept on failure)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	keep := *dir != ""
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "keiline-chaos-"); err != nil {
			return err
		}
		if err := os.Chmod(*dir, 0o755); err != nil { // PostgreSQL runs as another user under root
			return err
		}
	}
	logFile, err := os.OpenFile(filepath.Join(*dir, "chaos.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Printf("keiline chaos: seed %d, %d faults of each of %d classes over %s; state and logs in %s\n", *seed, *perClass, len(chaos.Classes), *duration, *dir)
	rep, err := chaos.Run(ctx, chaos.Config{
		Dir: *dir, Seed: *seed, Duration: *duration, FaultsPerClass: *perClass, Speed: *speed,
		Command: func(args ...string) *exec.Cmd {
			cmd := exec.Command(exe, args...)
			cmd.Env = os.Environ()
			return cmd
		},
		Logger: slog.New(slog.NewTextHandler(logFile, nil)),
		Out:    os.Stdout,
	})
	if err != nil {
		return fmt.Errorf("chaos: %w (state and logs kept in %s)", err, *dir)
	}
	fmt.Println()
	rep.Print(os.Stdout)
	if !rep.OK() {
		return fmt.Errorf("chaos: the record does not equal the truth (state and logs kept in %s)", *dir)
	}
	if !keep {
		_ = os.RemoveAll(*dir)
	}
	return nil
}
