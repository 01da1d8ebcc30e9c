package simulator

import (
	"testing"
	"time"
	"path/filepath"
)

func TestZZTiming(t *testing.T) {
	t0 := time.Now()
	p := startPlant(t, Config{Seed: 5, Speed: 600, Cars: 3, TruthPath: filepath.Join(t.TempDir(), "a.jsonl")})
	t.Logf("start %v", time.Since(t0))
	t0 = time.Now()
	_, stop := startAckers(t, p)
	t.Logf("ackers %v", time.Since(t0))
	t0 = time.Now()
	last := -1
	for {
		select {
		case <-p.Done():
			t.Logf("done %v", time.Since(t0))
			t0 = time.Now()
			stop()
			p.Stop()
			t.Logf("stop %v", time.Since(t0))
			return
		case <-time.After(100 * time.Millisecond):
			s := p.Stats()
			if s.Out != last { t.Logf("%v out %d framed %d", time.Since(t0), s.Out, s.Framed); last = s.Out }
		}
	}
}
