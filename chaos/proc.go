package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// restartDelay is how long the supervisor waits before it restarts a part
// that exited on its own (as systemd's RestartSec would).
const restartDelay = 300 * time.Millisecond

// proc is one keiline part run as its own process under a supervisor that
// restarts it when it exits, unless it is held down by a fault.
type proc struct {
	name    string
	command func(args ...string) *exec.Cmd
	logPath string
	log     *slog.Logger

	mu       sync.Mutex
	args     []string
	cmd      *exec.Cmd
	held     bool
	killed   bool // the current process was killed by a fault
	release  chan struct{}
	starts   int
	crashes  int // exits nobody asked for
	stopping bool
}

func newProc(name string, command func(args ...string) *exec.Cmd, logPath string, log *slog.Logger, args ...string) *proc {
	return &proc{name: name, command: command, logPath: logPath, log: log.With("part", name), args: args, release: make(chan struct{}, 1)}
}

// supervise runs the process until ctx is done, restarting it when it
// exits; it stops the process with SIGINT (then SIGKILL) at the end.
func (p *proc) supervise(ctx context.Context) {
	for ctx.Err() == nil {
		p.mu.Lock()
		for p.held {
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-p.release:
			}
			p.mu.Lock()
		}
		cmd := p.command(p.args...)
		p.mu.Unlock()
		logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			p.log.Error("open log", "err", err)
			return
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logf.Close()
			p.log.Error("start failed", "err", err)
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		p.mu.Lock()
		p.cmd = cmd
		p.starts++
		p.mu.Unlock()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err = <-exited:
		case <-ctx.Done():
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
			logf.Close()
			return
		}
		logf.Close()
		p.mu.Lock()
		p.cmd = nil
		if !p.killed {
			p.crashes++
			p.log.Warn("exited on its own; restarting", "err", err)
		}
		p.killed = false
		p.mu.Unlock()
		if !sleepCtx(ctx, restartDelay) {
			return
		}
	}
}

// kill9 kills the process with SIGKILL and holds it down until up.
func (p *proc) kill9() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = true
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	p.killed = true
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("%s: kill -9: %w", p.name, err)
	}
	return nil
}

// up lets a held process start again, with args when given.
func (p *proc) up(args ...string) {
	p.mu.Lock()
	if args != nil {
		p.args = args
	}
	p.held = false
	p.mu.Unlock()
	select {
	case p.release <- struct{}{}:
	default:
	}
}

func (p *proc) stats() (starts, crashes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts, p.crashes
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
