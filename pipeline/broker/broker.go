// Package broker runs an embedded nats-server with JetStream for `keiline
// up` and for tests: the real server, in this process, with its file store
// under a directory of ours and every write synced to disk.
package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ReadyTimeoutDefault bounds the wait for the server to accept connections.
const ReadyTimeoutDefault = 10 * time.Second

// Config configures an embedded server.
type Config struct {
	// StoreDir holds the JetStream file store. Required.
	StoreDir string
	// Host defaults to 127.0.0.1.
	Host string
	// Port defaults to a free port (-1).
	Port int
	// Logger receives the server's warnings and errors. Defaults to slog.Default().
	Logger *slog.Logger
}

// Broker is a running embedded nats-server.
type Broker struct {
	srv *server.Server
}

// Start starts the server and waits until it accepts connections.
// JetStream syncs every write (sync_interval: always): the default of
// syncing every two minutes can lose acknowledged messages on a crash.
func Start(cfg Config) (*Broker, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("broker: StoreDir is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = server.RANDOM_PORT
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	opts := &server.Options{
		ServerName:         "keiline",
		Host:               cfg.Host,
		Port:               cfg.Port,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		SyncAlways:         true,
		NoSigs:             true,
		MaxPayload:         8 << 20,
		JetStreamMaxMemory: 256 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	srv.SetLoggerV2(&logger{log: cfg.Logger.With("component", "nats")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(ReadyTimeoutDefault) {
		srv.Shutdown()
		return nil, fmt.Errorf("broker: nats-server not ready after %s (store %s)", ReadyTimeoutDefault, cfg.StoreDir)
	}
	return &Broker{srv: srv}, nil
}

// Port is the port the server listens on (to restart it on the same one).
func (b *Broker) Port() int { return b.srv.Addr().(*net.TCPAddr).Port }

// URL is the client URL of the server.
func (b *Broker) URL() string { return b.srv.ClientURL() }

// Shutdown stops the server and waits for it. Safe twice.
func (b *Broker) Shutdown() {
	if b == nil || b.srv == nil {
		return
	}
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
}

type logger struct{ log *slog.Logger }

func (l *logger) Noticef(format string, v ...any) {}
func (l *logger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *logger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *logger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *logger) Debugf(format string, v ...any)  {}
func (l *logger) Tracef(format string, v ...any)  {}
