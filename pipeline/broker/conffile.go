package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/keiline/keiline/internal/pki"
)

// WriteConfig writes cfg as a nats-server configuration file (nats-server's
// own format, mode 0600), so that `nats-server -c path` serves what Start
// serves: the same host and port (0 is a free port, -1), JetStream in
// cfg.StoreDir syncing every write (sync_interval: always), and with
// cfg.Security the same TLS, nkey users and permissions.
//
// nats-server reads no revocation list (nats-io/nats-server#929: it checks
// revocation by OCSP only, and that needs a responder). So the file pins
// the public key of every user's client certificate (tls pinned_certs)
// that the trust's revocation list does not revoke: a revoked certificate
// is refused at the handshake. To revoke on a running server, revoke the
// certificate (pki.Revoke), write the file again and reload the server
// (`nats-server --signal reload`, or SIGHUP): the reload refuses the
// certificate from then on and closes the connections that use it.
// WriteConfig returns an error naming the user whose certificate is
// missing or not trusted.
func WriteConfig(path string, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	w := &confWriter{}
	w.line(0, "# nats-server configuration written by keiline (broker.WriteConfig):")
	w.line(0, "# the server `keiline up` embeds. Write it again after a revocation and reload.")
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := cfg.Port
	if port == 0 {
		port = -1
	}
	w.kv(0, "server_name", w.q(ServerName))
	w.kv(0, "host", w.q(host))
	w.kv(0, "port", fmt.Sprint(port))
	w.kv(0, "max_payload", fmt.Sprint(MaxPayload))
	w.line(0, "jetstream {")
	w.kv(1, "store_dir", w.q(cfg.StoreDir))
	w.kv(1, "sync_interval", w.q("always"))
	w.kv(1, "max_memory_store", fmt.Sprint(MaxMemory))
	w.line(0, "}")
	if s := cfg.Security; s != nil {
		if err := w.security(s); err != nil {
			return fmt.Errorf("broker: config %s: %w", path, err)
		}
	}
	if w.err != nil {
		return fmt.Errorf("broker: config %s: %w", path, w.err)
	}
	if err := writePrivate(path, []byte(w.b.String())); err != nil {
		return fmt.Errorf("broker: config %s: %w", path, err)
	}
	return nil
}

func (w *confWriter) security(s *Security) error {
	v, err := pki.NewVerifier(s.TLS.Trust)
	if err != nil {
		return err
	}
	w.line(0, "tls {")
	w.kv(1, "cert_file", w.q(s.TLS.CertFile))
	w.kv(1, "key_file", w.q(s.TLS.KeyFile))
	w.kv(1, "ca_file", w.q(s.TLS.Trust.CAFile))
	w.kv(1, "verify", "true")
	w.kv(1, "timeout", fmt.Sprint(s.timeout().Seconds()))
	w.line(1, "# The public keys of the users' certificates not revoked; no other")
	w.line(1, "# certificate completes a handshake.")
	w.line(1, "pinned_certs: [")
	for _, u := range s.Users {
		if u.CertFile == "" {
			return fmt.Errorf("user %s: CertFile is required to pin its certificate", u.Name)
		}
		b, err := os.ReadFile(u.CertFile)
		if err != nil {
			return fmt.Errorf("user %s: certificate: %w", u.Name, err)
		}
		chain, err := pki.ParseCertificates(b)
		if err != nil {
			return fmt.Errorf("user %s: certificate %s: %w", u.Name, u.CertFile, err)
		}
		switch err := v.Verify(chain, x509ClientAuth); {
		case errors.Is(err, pki.ErrRevoked):
			w.line(2, "# "+u.Name+": revoked, not pinned")
			continue
		case err != nil:
			return fmt.Errorf("user %s: certificate %s: %w", u.Name, u.CertFile, err)
		}
		w.line(2, "# "+u.Name)
		w.line(2, w.q(pki.PublicKeyPin(chain[0])))
	}
	w.line(1, "]")
	w.line(0, "}")
	w.line(0, "authorization {")
	w.kv(1, "timeout", fmt.Sprint(s.timeout().Seconds()+1))
	w.line(1, "users: [")
	for _, u := range s.Users {
		w.line(2, "# "+u.Name)
		w.line(2, "{")
		w.kv(3, "nkey", w.q(u.NKey))
		w.line(3, "permissions: {")
		w.subjects(4, "publish", u.Permissions.Publish)
		w.subjects(4, "subscribe", u.Permissions.Subscribe)
		if u.Permissions.Responses {
			w.kv(4, "allow_responses", fmt.Sprintf("{ max: 1, expires: %s }", w.q(ResponseExpiryDefault.String())))
		}
		w.line(3, "}")
		w.line(2, "}")
	}
	w.line(1, "]")
	w.line(0, "}")
	return nil
}

type confWriter struct {
	b   strings.Builder
	err error
}

func (w *confWriter) line(depth int, s string) {
	w.b.WriteString(strings.Repeat("  ", depth))
	w.b.WriteString(s)
	w.b.WriteByte('\n')
}

func (w *confWriter) kv(depth int, k, v string) { w.line(depth, k+": "+v) }

// subjects writes a permission; an empty allow list denies everything.
func (w *confWriter) subjects(depth int, name string, s Subjects) {
	allow, deny := s.Allow, s.Deny
	if len(allow) == 0 {
		deny = []string{">"}
	}
	var parts []string
	if len(allow) > 0 {
		parts = append(parts, "allow: "+w.list(allow))
	}
	if len(deny) > 0 {
		parts = append(parts, "deny: "+w.list(deny))
	}
	w.kv(depth, name, "{ "+strings.Join(parts, ", ")+" }")
}

func (w *confWriter) list(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = w.q(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// q quotes s as a config string; one it cannot write unambiguously is an
// error.
func (w *confWriter) q(s string) string {
	if strings.ContainsAny(s, "\"\\") || strings.ContainsFunc(s, unicode.IsControl) {
		if w.err == nil {
			w.err = fmt.Errorf("%q: quotes, backslashes and control characters cannot be written", s)
		}
	}
	return `"` + s + `"`
}

// writePrivate writes path (mode 0600) through a rename.
func writePrivate(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
