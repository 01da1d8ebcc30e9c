// Package schema is keiline's record: the PostgreSQL schema as embedded,
// ordered migrations, and every query that reads or writes it. It knows
// nothing of NATS, OPC UA or the simulator.
package schema

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned when a VIN or row does not exist.
var ErrNotFound = errors.New("not found")

// Migrate applies every pending migration, each in its own transaction,
// holding a Postgres advisory lock so two processes never migrate at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Store reads and writes the record through a connection pool.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the database at url and applies the migrations.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", cfg.ConnConfig.Host, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// Pool returns the store's connection pool (benchmarks and tools).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Tx is one transaction of the store.
type Tx struct {
	tx pgx.Tx
}

// WithTx runs fn in one transaction, committed when fn returns nil and
// rolled back otherwise.
func (s *Store) WithTx(ctx context.Context, fn func(tx *Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(&Tx{tx: tx}) })
}

// ChainHash is the hash of an event log row: sha256 over the previous row's
// hash, the row's sequence number (8 bytes, big-endian), its event id, a
// zero byte and its payload.
func ChainHash(prev []byte, seq int64, eventID string, payload []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seq))
	h.Write(b[:])
	h.Write([]byte(eventID))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)
}

// EventRow is one build event as the log keeps it.
type EventRow struct {
	ID, Kind, Plant, Line, Station, VIN string
	OccurredAt, RecordedAt              time.Time
	// Payload is the message body exactly as received; the hash covers it.
	Payload []byte
}

// AppendEvents appends the events not yet in the log, in order, to the
// hash-chained log and reports for each whether it was new. An event id
// already in the log (a redelivery) is skipped and reported false; the
// caller must then derive no rows from it.
func (t *Tx) AppendEvents(ctx context.Context, evs []EventRow) ([]bool, error) {
	fresh := make([]bool, len(evs))
	if len(evs) == 0 {
		return fresh, nil
	}
	var seq int64
	var prev []byte
	if err := t.tx.QueryRow(ctx, `SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE`).Scan(&seq, &prev); err != nil {
		return nil, fmt.Errorf("event log: lock chain head: %w", err)
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	rows, err := t.tx.Query(ctx, `SELECT event_id FROM event_log WHERE event_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("event log: find duplicates: %w", err)
	}
	seen, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("event log: find duplicates: %w", err)
	}
	have := make(map[string]bool, len(seen)+len(evs))
	for _, id := range seen {
		have[id] = true
	}
	var copyRows [][]any
	for i, ev := range evs {
		if have[ev.ID] {
			continue
		}
		have[ev.ID] = true
		fresh[i] = true
		seq++
		hash := ChainHash(prev, seq, ev.ID, ev.Payload)
		copyRows = append(copyRows, []any{seq, ev.ID, ev.Kind, ev.Plant, ev.Line, ev.Station, ev.VIN, ev.OccurredAt, ev.RecordedAt, ev.Payload, prev, hash})
		prev = hash
	}
	if len(copyRows) == 0 {
		return fresh, nil
	}
	if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{"event_log"},
		[]string{"seq", "event_id", "kind", "plant", "line", "station", "vin", "occurred_at", "recorded_at", "payload", "prev_hash", "hash"},
		pgx.CopyFromRows(copyRows)); err != nil {
		return nil, fmt.Errorf("event log: append %d events: %w", len(copyRows), err)
	}
	if _, err := t.tx.Exec(ctx, `UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1`, seq, prev); err != nil {
		return nil, fmt.Errorf("event log: move chain head: %w", err)
	}
	return fresh, nil
}
