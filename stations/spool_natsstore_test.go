package stations_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/tmpfs"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/stations"
)

// TestAgentSpoolsWhenTheNATSStoreDiskIsFull puts the embedded nats-server's
// JetStream store on a small filesystem that really fills (a tmpfs, as
// root). nats-server cannot store the next event: it logs the write error
// and answers the agent nothing, so the agent spools (nothing is
// acknowledged that is not durable somewhere); the broker's log names the
// store and says what to do, /metrics shows its free space at 0. The file
// store keeps its write error after space is freed, so the operator
// restarts the server (as the test does); the spool drains and every
// cycle is in the stream once.
func TestAgentSpoolsWhenTheNATSStoreDiskIsFull(t *testing.T) {
	disk := tmpfs.Mount(t, 16<<20)
	store := filepath.Join(disk, "nats")
	r := newRigWith(t, rigOptions{cars: 12, speed: 300, natsStore: store,
		spool: &stations.SpoolConfig{Path: filepath.Join(t.TempDir(), "spool.db")}})
	waitFor(t, r, 2*time.Minute, "three cars framed", func() bool { return r.plant.Stats().Framed >= 3 })

	free := tmpfs.Fill(t, disk)
	named := regexp.MustCompile(`level=ERROR msg="NATS store disk full[^\n]*store_dir=` + regexp.QuoteMeta(store))
	waitFor(t, r, 2*time.Minute, "the agent spooling and the broker naming the full store", func() bool {
		logs := r.logs.String()
		return r.spool.Len() > 0 && strings.Contains(logs, "events go to the local spool") &&
			named.MatchString(logs) && strings.Contains(logs, "no space left on device")
	})
	if !metricIs(metricsPage(t), `keiline_nats_store_free_bytes{store_dir="`+store+`"}`, "0") {
		t.Errorf("/metrics does not show the NATS store's disk full:\n%s", grepLines(metricsPage(t), "keiline_nats_store"))
	}
	// The line keeps running on the spool meanwhile.
	out := r.plant.Stats().Out
	waitFor(t, r, 2*time.Minute, "cars leaving the line while the store is full", func() bool { return r.plant.Stats().Out >= out+2 })

	free()
	r.broker.Shutdown() // the operator's restart: the store keeps its write error until then
	b, err := broker.Start(r.nats)
	if err != nil {
		t.Fatal(err)
	}
	r.broker = b
	r.waitDone(t)
	checkAgainstTruth(t, r, 12)
}
