// Package broker runs an embedded nats-server with JetStream for `keiline
// up` and for tests: the real server, in this process, with its file store
// under a directory of ours and every write synced to disk. It also
// describes the parts of a plant on NATS (Parts), gives each an identity
// (an nkey and a client certificate from internal/pki, Provision) with
// least-privilege permissions, serves them over mutual TLS (Config.Security),
// writes the same server as a nats-server config file (WriteConfig) and
// connects a part with its credentials (Credentials.Options).
package broker

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/keiline/keiline/internal/pki"
	"github.com/nats-io/nats-server/v2/server"
)

// ReadyTimeoutDefault bounds the wait for the server to accept connections.
const ReadyTimeoutDefault = 10 * time.Second

// Server settings, the same in Start and WriteConfig.
const (
	// ServerName is the server's name.
	ServerName = "keiline"
	// MaxPayload is the largest message: 8 MiB.
	MaxPayload = 8 << 20
	// MaxMemory bounds JetStream's memory store: 256 MiB.
	MaxMemory = 256 << 20
)

const x509ClientAuth = x509.ExtKeyUsageClientAuth

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
	// Security is who may connect and what each may do: TLS with client
	// certificates and an nkey per part. Nil serves in plain text to
	// anyone, which Start allows only on a loopback Host (tests and
	// development).
	Security *Security
}

// Validate checks cfg and names the first bad field.
func (cfg *Config) Validate() error {
	if cfg.StoreDir == "" {
		return errors.New("broker: StoreDir is required")
	}
	if cfg.Port < -1 || cfg.Port > 65535 {
		return fmt.Errorf("broker: Port %d outside -1..65535", cfg.Port)
	}
	if cfg.Security == nil {
		if ip := net.ParseIP(cfg.Host); cfg.Host != "" && cfg.Host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("broker: Host %s without Security: a server open to anyone may listen only on loopback", cfg.Host)
		}
		return nil
	}
	return cfg.Security.Validate()
}

// Broker is a running embedded nats-server.
type Broker struct {
	srv *server.Server
	v   *pki.Verifier // nil without Security
	log *slog.Logger

	mu    sync.Mutex
	certs map[string]*x509.Certificate // client certificates accepted, by SHA-256 of their DER
}

// Start starts the server and waits until it accepts connections.
// JetStream syncs every write (sync_interval: always): the default of
// syncing every two minutes can lose acknowledged messages on a crash.
//
// With cfg.Security every client must complete a TLS handshake with a
// certificate the security's trust accepts (a revoked one is refused as
// soon as the revocation list file says so) and then prove its nkey;
// each user gets its permissions.
func Start(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
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
		ServerName:         ServerName,
		Host:               cfg.Host,
		Port:               cfg.Port,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		SyncAlways:         true,
		NoSigs:             true,
		MaxPayload:         MaxPayload,
		JetStreamMaxMemory: MaxMemory,
	}
	b := &Broker{log: cfg.Logger.With("component", "nats", "store_dir", cfg.StoreDir), certs: map[string]*x509.Certificate{}}
	if cfg.Security != nil {
		v, err := cfg.Security.apply(opts)
		if err != nil {
			return nil, err
		}
		b.v = v
		verify := opts.TLSConfig.VerifyConnection
		opts.TLSConfig.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := verify(cs); err != nil {
				return err
			}
			b.remember(cs.PeerCertificates[0])
			return nil
		}
	} else {
		b.log.Warn("NATS serves without TLS or authentication (loopback only)", "host", cfg.Host)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	srv.SetLoggerV2(&logger{log: b.log}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(ReadyTimeoutDefault) {
		srv.Shutdown()
		return nil, fmt.Errorf("broker: nats-server not ready after %s (store %s)", ReadyTimeoutDefault, cfg.StoreDir)
	}
	b.srv = srv
	b.watchStore(cfg.StoreDir)
	return b, nil
}

func certKey(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return hex.EncodeToString(h[:])
}

func (b *Broker) remember(c *x509.Certificate) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.certs[certKey(c)] = c
}

// Revalidate checks the certificate of every open client connection
// against the revocation list again and closes those it now revokes (a
// revocation refuses new connections at once; this ends the open ones).
// It returns how many it closed, and the first error other than a
// revocation (an unreadable list, a connection that would not close).
// Without Security it does nothing.
func (b *Broker) Revalidate() (int, error) {
	if b == nil || b.srv == nil || b.v == nil {
		return 0, nil
	}
	cz, err := b.srv.Connz(&server.ConnzOptions{Username: true, Limit: 1 << 20})
	if err != nil {
		return 0, fmt.Errorf("broker: connections: %w", err)
	}
	closed := 0
	var first error
	for _, ci := range cz.Conns {
		if len(ci.TLSPeerCerts) == 0 {
			continue
		}
		b.mu.Lock()
		c := b.certs[ci.TLSPeerCerts[0].CertSha256]
		b.mu.Unlock()
		if c == nil {
			continue
		}
		err := b.v.CheckRevoked(c)
		if err == nil {
			continue
		}
		if !errors.Is(err, pki.ErrRevoked) {
			if first == nil {
				first = fmt.Errorf("broker: %w", err)
			}
			continue
		}
		if err := b.srv.DisconnectClientByID(ci.Cid); err != nil {
			if first == nil {
				first = fmt.Errorf("broker: close connection %d of %s: %w", ci.Cid, pki.Describe(c), err)
			}
			continue
		}
		b.log.Warn("closed the connection of a revoked certificate", "cid", ci.Cid, "certificate", pki.Describe(c))
		closed++
	}
	return closed, first
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
	b.unwatchStore()
}
