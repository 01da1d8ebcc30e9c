package stations

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	bolt "go.etcd.io/bbolt"
)

// Spool limits.
const (
	// SpoolMaxBytesDefault bounds the spool's events. When it is full the
	// agent stops acknowledging PLCs: the line stops, nothing is dropped.
	SpoolMaxBytesDefault = 256 << 20
	// SpoolMaxAgeDefault bounds how old the oldest spooled event may get
	// before the spool counts as full.
	SpoolMaxAgeDefault = 72 * time.Hour
)

// marksBatchDelay is the longest a last-durable mark waits for the marks
// of other controllers to share its write (SetLastDurable).
const marksBatchDelay = time.Millisecond

// ErrSpoolFull is returned by Append when the spool is at its size or age
// bound, or its disk is full. The event was not stored and the PLC must
// not be acknowledged.
var ErrSpoolFull = errors.New("spool full")

// ErrSpoolDiskFull is returned by Append, wrapped with ErrSpoolFull and
// the disk's error, when the spool file's filesystem has no space left.
var ErrSpoolDiskFull = errors.New("the spool's disk is full")

var (
	metricSpoolDepth = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "keiline_agent_spool_events", Help: "Events waiting in the agent's local spool for NATS.",
	})
	metricSpoolBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "keiline_agent_spool_bytes", Help: "Bytes of events waiting in the agent's local spool.",
	})
	metricSpooled = promauto.NewCounter(prometheus.CounterOpts{
		Name: "keiline_agent_events_spooled_total", Help: "Events written to the local spool because NATS did not acknowledge in time.",
	})
	metricForwarded = promauto.NewCounter(prometheus.CounterOpts{
		Name: "keiline_agent_events_forwarded_total", Help: "Spooled events published to NATS and removed from the spool.",
	})
	metricSpoolFull = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "keiline_agent_spool_full", Help: "1 while the spool is full (its bounds, or its disk) and PLCs are not acknowledged.",
	})
	metricSpoolDiskFull = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "keiline_agent_spool_disk_full", Help: "1 while the spool file's filesystem has no space left (the agent's log names the file).",
	})
	metricSpoolWriteErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "keiline_agent_spool_write_errors_total", Help: "Spool writes that failed (the disk's error), each a PLC result not acknowledged.",
	})
)

var (
	spoolBucket = []byte("events")
	// marksBucket holds, per tightening controller, the id of the last
	// tightening up to which every one is durable (LastDurable).
	marksBucket = []byte("tightening_marks")
	// epochsBucket holds, per station and counter (CounterKey), the
	// counter's epoch and the last value the agent published (epoch.go).
	epochsBucket = []byte("counter_epochs")
)

// SpoolConfig configures a Spool.
type SpoolConfig struct {
	// Path of the spool file (a bbolt database). Required.
	Path string
	// MaxBytes defaults to SpoolMaxBytesDefault.
	MaxBytes int64
	// MaxAge defaults to SpoolMaxAgeDefault.
	MaxAge time.Duration
	// Logger receives the spool's disk full and recovered messages.
	// Defaults to slog.Default().
	Logger *slog.Logger
}

// Spool is the agent's local store-and-forward queue: events NATS did not
// acknowledge in time, in the order they came, each synced to disk before
// Append returns. It is an embedded bbolt database, which also keeps what
// the agent must remember across restarts: each tightening controller's
// last durable result (LastDurable) and each PLC counter's epoch
// (CounterMark).
type Spool struct {
	db       *bolt.DB
	path     string
	maxBytes int64
	maxAge   time.Duration
	log      *slog.Logger

	mu       sync.Mutex
	count    int
	bytes    int64
	oldest   time.Time // spooled time of the first entry
	diskFull bool      // the last write failed for want of space
}

// SpooledEvent is one entry of the spool.
type SpooledEvent struct {
	Key       uint64
	SpooledAt time.Time
	Body      []byte // the event as published
}

// OpenSpool opens (or creates) the spool at cfg.Path.
func OpenSpool(cfg SpoolConfig) (*Spool, error) {
	if cfg.Path == "" {
		return nil, errors.New("spool: Path is required")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = SpoolMaxBytesDefault
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = SpoolMaxAgeDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", cfg.Path, err)
	}
	db.MaxBatchDelay = marksBatchDelay
	s := &Spool{db: db, path: cfg.Path, maxBytes: cfg.MaxBytes, maxAge: cfg.MaxAge, log: cfg.Logger.With("component", "spool", "spool", cfg.Path)}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(marksBucket); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(epochsBucket); err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists(spoolBucket)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			if s.count == 0 {
				s.oldest = spooledAt(v)
			}
			s.count++
			s.bytes += int64(len(v))
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("spool %s: %w", cfg.Path, err)
	}
	s.gauges()
	return s, nil
}

func spooledAt(v []byte) time.Time {
	if len(v) < 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[:8])))
}

func (s *Spool) gauges() {
	metricSpoolDepth.Set(float64(s.count))
	metricSpoolBytes.Set(float64(s.bytes))
}

// Len returns how many events wait in the spool.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Full reports whether the spool is at its size or age bound.
func (s *Spool) Full(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full(now, 0)
}

func (s *Spool) full(now time.Time, adding int) bool {
	return s.bytes+int64(adding) > s.maxBytes || (s.count > 0 && now.Sub(s.oldest) > s.maxAge)
}

// Append stores body at the end of the spool and syncs it to disk. It
// returns ErrSpoolFull when the spool is at its bounds; ErrSpoolFull and
// ErrSpoolDiskFull with the disk's error, naming the spool file, when its
// filesystem has no space left (logged once as an ERROR until a write
// succeeds again); the disk's error for any other failed write. Either way
// nothing was stored.
func (s *Spool) Append(now time.Time, body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := make([]byte, 8+len(body))
	binary.BigEndian.PutUint64(v, uint64(now.UnixNano()))
	copy(v[8:], body)
	if s.full(now, len(v)) {
		metricSpoolFull.Set(1)
		return fmt.Errorf("%w: %d events, %d of %d bytes, oldest from %s", ErrSpoolFull, s.count, s.bytes, s.maxBytes, s.oldest.Format(time.RFC3339))
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(spoolBucket)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], seq)
		return b.Put(k[:], v)
	})
	if err != nil {
		metricSpoolWriteErrors.Inc()
		if errors.Is(err, syscall.ENOSPC) {
			return s.noSpace(err)
		}
		return fmt.Errorf("spool %s: append: %w", s.path, err)
	}
	if s.diskFull {
		s.diskFull = false
		metricSpoolDiskFull.Set(0)
		s.log.Info("spool: its disk has space again: events are spooled and PLCs acknowledged")
	}
	if s.count == 0 {
		s.oldest = now
	}
	s.count++
	s.bytes += int64(len(v))
	metricSpoolFull.Set(0)
	metricSpooled.Inc()
	s.gauges()
	return nil
}

// noSpace reports a write that failed for want of space. s.mu is held.
func (s *Spool) noSpace(err error) error {
	metricSpoolFull.Set(1)
	metricSpoolDiskFull.Set(1)
	if !s.diskFull {
		s.diskFull = true
		s.log.Error("spool: its disk is full: PLC results are not acknowledged and the line will stop; free space on the spool file's filesystem",
			"events", s.count, "bytes", s.bytes, "err", err)
	}
	return fmt.Errorf("%w: %w: spool %s: %w", ErrSpoolFull, ErrSpoolDiskFull, s.path, err)
}

// Peek returns up to n of the oldest events, oldest first.
func (s *Spool) Peek(n int) ([]SpooledEvent, error) {
	var out []SpooledEvent
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(spoolBucket).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			out = append(out, SpooledEvent{Key: binary.BigEndian.Uint64(k), SpooledAt: spooledAt(v), Body: append([]byte(nil), v[8:]...)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spool: read: %w", err)
	}
	return out, nil
}

// Remove deletes the event with key, once it is durable in NATS.
func (s *Spool) Remove(key uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], key)
	var size int
	var next time.Time
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(spoolBucket)
		v := b.Get(k[:])
		if v == nil {
			return nil
		}
		size = len(v)
		if err := b.Delete(k[:]); err != nil {
			return err
		}
		if _, first := b.Cursor().First(); first != nil {
			next = spooledAt(first)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spool: remove %d: %w", key, err)
	}
	if size > 0 {
		s.count--
		s.bytes -= int64(size)
		s.oldest = next
		metricForwarded.Inc()
		if !s.full(time.Now(), 0) {
			metricSpoolFull.Set(0)
		}
		s.gauges()
	}
	return nil
}

// LastDurable returns the id of the last tightening of the controller
// named key up to which every tightening is durable, as SetLastDurable
// kept it (0: none yet). The controller fetches the newer ones after a
// restart of the agent (MID 0064).
func (s *Spool) LastDurable(key string) (uint32, error) {
	var id uint32
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(marksBucket).Get([]byte(key)); len(v) == 4 {
			id = binary.BigEndian.Uint32(v)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("spool: last durable tightening of %s: %w", key, err)
	}
	return id, nil
}

// SetLastDurable keeps id as the last durable tightening of the
// controller named key, synced to disk before it returns. Marks of several
// controllers set at once share one write (bbolt's Batch).
func (s *Spool) SetLastDurable(key string, id uint32) error {
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], id)
	err := s.db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(marksBucket).Put([]byte(key), v[:]) })
	if err != nil {
		return fmt.Errorf("spool: keep last durable tightening %d of %s: %w", id, key, err)
	}
	return nil
}

// CounterMark is what the agent keeps of one PLC counter: its epoch (how
// often the agent saw it go back) and the last value it published.
type CounterMark struct {
	Epoch uint32
	Last  uint64
}

// CounterMark returns the mark of the counter named key (CounterKey) as
// SetCounterMarks kept it; ok is false when there is none.
func (s *Spool) CounterMark(key string) (m CounterMark, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(epochsBucket).Get([]byte(key))
		switch {
		case v == nil:
			return nil
		case len(v) != 12:
			return fmt.Errorf("%d bytes, want 12", len(v))
		}
		m, ok = CounterMark{Epoch: binary.BigEndian.Uint32(v), Last: binary.BigEndian.Uint64(v[4:])}, true
		return nil
	})
	if err != nil {
		return CounterMark{}, false, fmt.Errorf("spool %s: counter epoch of %s: %w", s.path, key, err)
	}
	return m, ok, nil
}

// SetCounterMarks keeps marks, by counter key, in one write synced to
// disk before it returns.
func (s *Spool) SetCounterMarks(marks map[string]CounterMark) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(epochsBucket)
		for k, m := range marks {
			var v [12]byte
			binary.BigEndian.PutUint32(v[:], m.Epoch)
			binary.BigEndian.PutUint64(v[4:], m.Last)
			if err := b.Put([]byte(k), v[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spool %s: keep counter epochs: %w", s.path, err)
	}
	return nil
}

// Close closes the spool file.
func (s *Spool) Close() error {
	if s == nil || s.db == nil {
		return nil
	}
	return s.db.Close()
}
