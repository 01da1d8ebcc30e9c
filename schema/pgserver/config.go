package pgserver

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"
)

// Defaults and limits of Config.
const (
	// StartTimeoutDefault bounds one Start: initdb (first start only) plus
	// waiting until the server accepts connections.
	StartTimeoutDefault = 60 * time.Second
	// StopTimeoutDefault bounds the fast shutdown in Stop before the
	// postmaster is killed.
	StopTimeoutDefault = 30 * time.Second
	// SharedBuffers is the shared_buffers setting written to the conf
	// snippet.
	SharedBuffers = "128MB"
	// MaxConnections is the max_connections setting written to the conf
	// snippet.
	MaxConnections = 100
)

// DefaultPassFile returns the password file of the cluster in dataDir when
// Config.PassFile is empty: secrets/<base name of dataDir>.pgpass beside
// dataDir, for example .keiline/secrets/pg.pgpass for .keiline/pg. It is
// outside the data directory so that a backup of the cluster made by the
// server's user, who cannot read it, does not fail on it.
func DefaultPassFile(dataDir string) string {
	dataDir = filepath.Clean(dataDir)
	return filepath.Join(filepath.Dir(dataDir), "secrets", filepath.Base(dataDir)+".pgpass")
}

// Config describes one private PostgreSQL cluster.
type Config struct {
	// Dir is the data directory (PGDATA). It is created and initialised
	// with initdb when it is absent or empty; a non-empty directory without
	// PG_VERSION is refused. Its parent directory is created when needed.
	// Required.
	Dir string
	// BinDir is the directory holding initdb and postgres. Defaults to
	// auto-detection: the Debian directory of the data directory's major
	// version, then `pg_config --bindir`, then the highest version under
	// /usr/lib/postgresql/*/bin, then initdb on PATH.
	BinDir string
	// Port is the TCP port on 127.0.0.1. Defaults to 0: a free port is
	// picked at each Start.
	Port int
	// StartTimeout bounds Start. Defaults to StartTimeoutDefault.
	StartTimeout time.Duration
	// StopTimeout bounds the fast shutdown in Stop before SIGKILL.
	// Defaults to StopTimeoutDefault.
	StopTimeout time.Duration
	// Logger receives lifecycle events (initdb, ready, stopped, unexpected
	// exit). The server's own log goes to LogPath. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// PassFile is the cluster's libpq password file (mode 0600, its
	// directory 0700 when Start creates it): Start keeps the superuser's
	// generated password there, and others may add lines for their roles
	// (schema.ProvisionLogins). Defaults to DefaultPassFile(Dir).
	PassFile string
	// TLS, when set, makes the server speak TLS with this certificate and
	// accept TCP connections only over TLS (hostssl). Defaults to nil: no
	// TLS, which suits a server listening on 127.0.0.1 only.
	TLS *TLS
}

// TLS is the server side of TLS for a cluster.
type TLS struct {
	// CertFile is the server's certificate chain (PEM), its name (or IP
	// address) as clients dial it in the subject alternative names.
	// Copied into the data directory at each Start. Required.
	CertFile string
	// KeyFile is the certificate's private key (PEM). Copied into the data
	// directory (mode 0600, owned by the server's user) at each Start.
	// Required.
	KeyFile string
	// CAFile is the CA clients verify the server with. When set, Server.URL
	// asks for sslmode=verify-full with sslrootcert=CAFile; when empty,
	// for sslmode=require (encrypted, the server unverified).
	CAFile string
}

// Validate reports the first invalid field of c, naming it and the allowed
// values.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("pgserver: Config.Dir is required (the data directory)")
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("pgserver: Config.Port %d: want 0 (pick a free port) or 1..65535", c.Port)
	case c.StartTimeout < 0:
		return fmt.Errorf("pgserver: Config.StartTimeout %v: want >= 0 (0 means %v)", c.StartTimeout, StartTimeoutDefault)
	case c.StopTimeout < 0:
		return fmt.Errorf("pgserver: Config.StopTimeout %v: want >= 0 (0 means %v)", c.StopTimeout, StopTimeoutDefault)
	case c.TLS != nil && (c.TLS.CertFile == "" || c.TLS.KeyFile == ""):
		return fmt.Errorf("pgserver: Config.TLS: CertFile and KeyFile are both required (PEM files)")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.StartTimeout == 0 {
		c.StartTimeout = StartTimeoutDefault
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = StopTimeoutDefault
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
