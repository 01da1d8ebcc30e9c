// Package browsertest drives headless Chromium for keiline's browser
// tests: a tab with a fresh profile (its own cookies and session) that
// keeps the errors its console saw (CSP violations among them), and a
// poll that survives navigations. Tests skip when Chromium is missing
// (./test.sh installs Debian's chromium).
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Chromium returns Debian's Chromium (or $KEILINE_CHROMIUM), or "".
func Chromium() string {
	if p := os.Getenv("KEILINE_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// Tab is one headless Chromium tab of its own profile.
type Tab struct {
	// Ctx is the tab's chromedp context, ended with the test.
	Ctx    context.Context
	mu     sync.Mutex
	errors []string
}

// New starts a tab for t, at a window of width × height (0, 0: Chromium's
// default), or skips t when there is no Chromium.
func New(t *testing.T, width, height int) *Tab {
	t.Helper()
	bin := Chromium()
	if bin == "" {
		t.Skip("no Chromium: install Debian's chromium package (./test.sh does) or set KEILINE_CHROMIUM")
	}
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(bin), chromedp.Headless,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true), chromedp.UserDataDir(t.TempDir())}
	if width > 0 && height > 0 {
		opts = append(opts, chromedp.WindowSize(width, height))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &Tab{Ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				msg = fmt.Sprintf("%s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errors = append(b.errors, msg)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	return b
}

// Do runs steps in the tab, failing t on an error.
func (b *Tab) Do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// WaitFor polls expr until it is truthy and returns its value, failing t
// after 30 s with what it waited for. A poll cut short by a navigation
// (the page's context destroyed) starts again on the new page.
func WaitFor[T any](t *testing.T, b *Tab, what, expr string) T {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := chromedp.Run(b.Ctx, chromedp.Poll[T](expr, chromedp.WithPollingInterval(20*time.Millisecond),
			chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil {
			return v
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "(-32000)") || b.Ctx.Err() != nil {
			t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
	}
}

// ConsoleErrors returns the errors the tab's console saw so far.
func (b *Tab) ConsoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}
