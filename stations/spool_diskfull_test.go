package stations_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/tmpfs"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/stations"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsPage returns the text of /metrics as the agent serves it.
func metricsPage(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricIs reports whether the metrics page has the sample name{labels} value.
func metricIs(page, sample, value string) bool {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` ` + regexp.QuoteMeta(value) + `$`).MatchString(page)
}

// waitFor polls cond every 10 ms until it holds, failing t after limit with
// what and the agent log.
func waitFor(t *testing.T, r *rig, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: plant %+v\nagent log:\n%s", what, r.plant.Stats(), r.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func faultAt900(r *rig) bool {
	for _, s := range r.plant.Stats().Stations {
		if s.FaultCode == 900 {
			return true
		}
	}
	return false
}

// TestAgentStopsTheLineWhenTheSpoolDiskIsFull puts the spool on a small
// filesystem that really fills (a tmpfs, as root) while NATS is down: the
// spool's writes fail with ENOSPC, the agent stops acknowledging, the PLCs
// hold their results (fault 900) and the line stops; an ERROR names the
// spool file and the disk's error, /metrics shows the full disk. Once
// space is freed the spool takes events again, forwards them when NATS is
// back, and every cycle is in the stream once.
func TestAgentStopsTheLineWhenTheSpoolDiskIsFull(t *testing.T) {
	disk := tmpfs.Mount(t, 8<<20) // before the rig: unmounted after it stops
	path := filepath.Join(disk, "spool.db")
	r := newRigWith(t, rigOptions{cars: 12, speed: 300, spool: &stations.SpoolConfig{Path: path}})
	waitFor(t, r, 2*time.Minute, "three cars framed", func() bool { return r.plant.Stats().Framed >= 3 })

	r.broker.Shutdown()
	free := tmpfs.Fill(t, disk)
	logged := regexp.MustCompile(`level=ERROR msg="spool: its disk is full[^\n]*spool=` + regexp.QuoteMeta(path) + `[^\n]*no space left on device`)
	waitFor(t, r, 2*time.Minute, "the line stopped on a full spool disk, with an ERROR naming the file", func() bool {
		return faultAt900(r) && logged.MatchString(r.logs.String())
	})
	page := metricsPage(t)
	if !metricIs(page, "keiline_agent_spool_disk_full", "1") || !metricIs(page, "keiline_agent_spool_full", "1") {
		t.Errorf("/metrics does not show the full spool disk:\n%s", grepLines(page, "keiline_agent_spool"))
	}
	if st := r.plant.Stats(); st.Out >= 12 {
		t.Fatalf("every car left the line although the spool could not store: %+v", st)
	}

	held := r.spool.Len()
	free()
	waitFor(t, r, 2*time.Minute, "the spool taking events again once space is freed", func() bool { return r.spool.Len() > held })
	if !strings.Contains(r.logs.String(), "spool: its disk has space again") {
		t.Errorf("the spool did not say it recovered:\n%s", r.logs.String())
	}
	if metricIs(metricsPage(t), "keiline_agent_spool_disk_full", "1") {
		t.Error("keiline_agent_spool_disk_full still 1 after a write succeeded")
	}
	b, err := broker.Start(r.nats)
	if err != nil {
		t.Fatal(err)
	}
	r.broker = b
	r.waitDone(t)
	checkAgainstTruth(t, r, 12)
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, strings.TrimRight(line, "\n"))
		}
	}
	return strings.Join(out, "\n")
}
