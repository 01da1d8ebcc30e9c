package broker

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// A JetStream file store on a full disk: nats-server (v2.15, one server)
// logs "Filestore [KEILINE] Critical write error: write …/msgs/1.blk: no
// space left on device" and "JetStream failed to store a msg on stream …",
// answers the publisher nothing (its publish times out, so an
// agent spools) and keeps the write error in the stream's store until the
// server restarts: freeing space is not enough, the server must be
// restarted (server/stream.go processJetStreamMsg, server/filestore.go
// StoreMsg "Always return previous write errors"). Clustered, it disables
// JetStream instead ("JetStream out of resources, will be DISABLED",
// server/jetstream.go handleOutOfSpace). Either way the broker logs which
// store is full and what to do, and keiline_nats_store_free_bytes shows it.

// noSpace is the text nats-server itself matches to tell a full disk
// (server/store.go isOutOfSpaceErr).
const noSpace = "no space left"

// storeDirs are the store directories of the running brokers, for
// keiline_nats_store_free_bytes.
var storeDirs = struct {
	sync.Mutex
	dirs map[*Broker]string
}{dirs: map[*Broker]string{}}

func init() { prometheus.MustRegister(storeCollector{}) }

var storeFreeDesc = prometheus.NewDesc("keiline_nats_store_free_bytes",
	"Bytes free on the filesystem of the embedded NATS server's JetStream store.", []string{"store_dir"}, nil)

// storeCollector reports the free space of each running broker's store
// when /metrics is read (statfs, no goroutine).
type storeCollector struct{}

func (storeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- storeFreeDesc }

func (storeCollector) Collect(ch chan<- prometheus.Metric) {
	storeDirs.Lock()
	defer storeDirs.Unlock()
	seen := map[string]bool{}
	for _, dir := range storeDirs.dirs {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(storeFreeDesc, prometheus.GaugeValue, float64(st.Bavail)*float64(st.Bsize), dir)
	}
}

func (b *Broker) watchStore(dir string) {
	storeDirs.Lock()
	defer storeDirs.Unlock()
	storeDirs.dirs[b] = dir
}

func (b *Broker) unwatchStore() {
	storeDirs.Lock()
	defer storeDirs.Unlock()
	delete(storeDirs.dirs, b)
}

// logger passes nats-server's warnings and errors to slog, each with the
// store directory, and adds an ERROR saying what to do when the store's
// disk is full.
type logger struct {
	log *slog.Logger

	mu       sync.Mutex
	diskFull bool // said once per server
}

func (l *logger) Noticef(format string, v ...any) {}
func (l *logger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *logger) Fatalf(format string, v ...any)  { l.error(fmt.Sprintf(format, v...)) }
func (l *logger) Errorf(format string, v ...any)  { l.error(fmt.Sprintf(format, v...)) }
func (l *logger) Debugf(format string, v ...any)  {}
func (l *logger) Tracef(format string, v ...any)  {}

func (l *logger) error(msg string) {
	l.log.Error(msg)
	if !strings.Contains(msg, noSpace) {
		return
	}
	l.mu.Lock()
	said := l.diskFull
	l.diskFull = true
	l.mu.Unlock()
	if !said {
		l.log.Error("NATS store disk full: JetStream takes no events (agents spool them); free space on the store's filesystem, then restart the NATS server")
	}
}
