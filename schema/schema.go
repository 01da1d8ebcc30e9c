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
	neturl "net/url"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// Roles of the record, made by the migrations. The tracker writes as
// RoleWriter, which may append to the event log but never change it; trace
// and audit read as RoleAuditor, which may only read.
const (
	RoleWriter  = "keiline_writer"
	RoleAuditor = "keiline_auditor"
)

// Store reads and writes the record through a connection pool.
type Store struct {
	pool *pgxpool.Pool

	// parts remembers which months have partitions, so AppendEvents asks
	// the database only when a batch reaches past them.
	parts partitionCache
	// seriesLen remembers how many values each characteristic's last
	// Series read held, so the next read of it (a chart is read again and
	// again) allocates its buffers once.
	seriesLen sync.Map // seriesKey → int
}

// Open connects to the database at url as the URL's user, which must own
// the schema (or be able to create it), applies the migrations and makes
// the partitions of the current months. The user's password comes as
// ConnConfig says.
func Open(ctx context.Context, url string) (*Store, error) {
	s, err := connect(ctx, url, "")
	if err != nil {
		return nil, err
	}
	if err := Migrate(ctx, s.pool); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.EnsurePartitions(ctx, time.Now(), time.Now()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenAs connects to the database at url as role (RoleWriter, RoleAuditor
// or RoleWeb) instead of the URL's user, without migrating: run Open (or
// keiline migrate) as the owner first. The role's password comes from the
// password file, as ConnConfig says; ProvisionLogins puts it there for a
// cluster of keiline's own.
func OpenAs(ctx context.Context, url, role string) (*Store, error) {
	return connect(ctx, url, role)
}

// OpenRole returns a store connected as role. When url names another user,
// taken to own the schema, the migrations are applied as that user first
// (see Open); when url already names role, it is used as it is and the
// schema must be current (keiline migrate).
func OpenRole(ctx context.Context, url, role string) (*Store, error) {
	if u, err := neturl.Parse(url); err == nil && u.User != nil && u.User.Username() == role {
		return connect(ctx, url, "")
	}
	owner, err := Open(ctx, url)
	if err != nil {
		return nil, err
	}
	owner.Close()
	return OpenAs(ctx, url, role)
}

// RoleURL returns url with its user replaced by role and, unless url
// already named role, without its password (see ConnConfig). The other
// parameters (passfile, sslmode, sslrootcert, …) stay.
func RoleURL(rawURL, role string) (string, error) {
	u, err := neturl.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return "", fmt.Errorf("database url: want postgres://user@host:port/database to connect as %s", role)
	}
	if u.User == nil || u.User.Username() != role {
		u.User = neturl.User(role)
	}
	return u.String(), nil
}

// ConnConfig returns the pool configuration for the database at rawURL,
// a postgres:// URL, as role, or as the URL's own user when role is "" —
// the one place where keiline turns a database URL and a role into a
// connection. The password is the URL's own when the URL names the user
// connecting; else the user's line in libpq's password file: the URL's
// passfile parameter, else the file PGPASSFILE names, else ~/.pgpass (pgx
// reads it into the configuration, so a password is never part of a URL
// string that might be logged). The URL's TLS parameters (sslmode=verify-full,
// sslrootcert, sslcert, sslkey) apply to every role.
func ConnConfig(rawURL, role string) (*pgxpool.Config, error) {
	if role != "" {
		u, err := RoleURL(rawURL, role)
		if err != nil {
			return nil, err
		}
		rawURL = u
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("database url %s: %w", redactURL(rawURL), err)
	}
	return cfg, nil
}

// redactURL returns rawURL with its password hidden, for errors.
func redactURL(rawURL string) string {
	if u, err := neturl.Parse(rawURL); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

func connect(ctx context.Context, url, role string) (*Store, error) {
	cfg, err := ConnConfig(url, role)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", cfg.ConnConfig.Host, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		c := cfg.ConnConfig
		return nil, fmt.Errorf("database %s:%d/%s as %s: %w%s", c.Host, c.Port, c.Database, c.User, err, loginHint(err, c.User, c.Password == ""))
	}
	return &Store{pool: pool}, nil
}

// loginHint says what to do when the server refused a login.
func loginHint(err error, user string, noPassword bool) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		return ""
	}
	if noPassword {
		return fmt.Sprintf(" (no password for %s: give it in a password file, a line host:port:database:%s:PASSWORD, "+
			"named by the URL's passfile parameter or PGPASSFILE; see docs/security.md)", user, user)
	}
	return fmt.Sprintf(" (the password given for %s, in the URL or the password file, is not the server's)", user)
}

// Pool returns the store's connection pool (benchmarks and tools).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Tx is one transaction of the store.
type Tx struct {
	tx    pgx.Tx
	store *Store
	// queued are statements that run with the next flush (Apply's last
	// round trip, or the commit), each named by queuedWhat for its error.
	queued     *pgx.Batch
	queuedWhat []string
	// head is the chain head as this transaction's appends left it, once
	// AppendAndView has appended (its UPDATE of chain_head is queued): a
	// later AppendAndView in the same transaction chains on from it.
	head *chainHead
}

// chainHead is the event log's last seq and hash.
type chainHead struct {
	seq  int64
	hash []byte
}

// WithTx runs fn in one transaction, committed when fn returns nil and
// rolled back otherwise.
func (s *Store) WithTx(ctx context.Context, fn func(tx *Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		t := &Tx{tx: tx, store: s}
		if err := fn(t); err != nil {
			return err
		}
		return t.flush(ctx)
	})
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
// caller must then derive no rows from it. The partitions of the events'
// months (and of the months ahead, see trace_settings) are made when
// missing.
func (t *Tx) AppendEvents(ctx context.Context, evs []EventRow) ([]bool, error) {
	fresh, _, err := t.AppendAndView(ctx, evs, ViewQuery{})
	return fresh, err
}
