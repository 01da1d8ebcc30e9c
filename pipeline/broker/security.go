package broker

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keiline/keiline/internal/pki"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Security defaults.
const (
	// TLSTimeoutDefault bounds a client's TLS handshake.
	TLSTimeoutDefault = 2 * time.Second
	// ResponseExpiryDefault is how long a part allowed to answer requests
	// (an agent's manifest reply) may answer one after receiving it.
	ResponseExpiryDefault = time.Minute
)

// Security is who may connect to the server and what each may do.
type Security struct {
	// TLS is required: every connection is TLS with a client certificate.
	TLS TLS
	// Users are the identities allowed to connect. At least one.
	Users []User
}

// TLS is the server's certificate and the trust its clients'
// certificates are checked against.
type TLS struct {
	// CertFile and KeyFile are the server's certificate and key. Required.
	CertFile, KeyFile string
	// Trust is the CA bundle (and revocation list) every client's
	// certificate must pass. CAFile is required.
	Trust pki.Trust
	// Timeout bounds a handshake. Defaults to TLSTimeoutDefault.
	Timeout time.Duration
}

// User is one identity: an nkey the client proves it holds, and its
// permissions.
type User struct {
	// Name is the part's name, for errors.
	Name string
	// NKey is the user's public nkey (U…). Required.
	NKey string
	// CertFile is the part's client certificate. WriteConfig pins its
	// public key (nats-server's pinned_certs), which is how a revoked
	// certificate is refused by a plain nats-server; Start does not need
	// it (its verifier reads the revocation list).
	CertFile    string
	Permissions Permissions
}

// Permissions are the subjects a user may publish and subscribe to.
// Allow lists are exhaustive: a subject not allowed is denied. Deny
// wins over allow.
type Permissions struct {
	Publish, Subscribe Subjects
	// Responses lets the user publish one reply to each request it
	// received, for ResponseExpiryDefault.
	Responses bool
}

// Subjects are allowed and denied subjects (NATS wildcards).
type Subjects struct {
	Allow, Deny []string
}

// Validate checks s and names the first bad field.
func (s *Security) Validate() error {
	if s.TLS.CertFile == "" || s.TLS.KeyFile == "" {
		return errors.New("security: TLS.CertFile and TLS.KeyFile (the server's certificate) are required")
	}
	if s.TLS.Trust.CAFile == "" {
		return errors.New("security: TLS.Trust.CAFile (the CA of the clients' certificates) is required")
	}
	if s.TLS.Timeout < 0 {
		return fmt.Errorf("security: TLS.Timeout %s is negative", s.TLS.Timeout)
	}
	if len(s.Users) == 0 {
		return errors.New("security: Users: none (nobody could connect)")
	}
	seen := map[string]string{}
	for i, u := range s.Users {
		if !nkeys.IsValidPublicUserKey(u.NKey) {
			return fmt.Errorf("security: Users[%d] %s: NKey %q is not a public user nkey", i, u.Name, u.NKey)
		}
		if other, ok := seen[u.NKey]; ok {
			return fmt.Errorf("security: Users[%d] %s: NKey is also %s's", i, u.Name, other)
		}
		seen[u.NKey] = u.Name
		for _, subj := range u.Permissions.all() {
			if err := checkSubject(subj); err != nil {
				return fmt.Errorf("security: Users[%d] %s: %w", i, u.Name, err)
			}
		}
	}
	return nil
}

func (p *Permissions) all() []string {
	var out []string
	for _, l := range [][]string{p.Publish.Allow, p.Publish.Deny, p.Subscribe.Allow, p.Subscribe.Deny} {
		out = append(out, l...)
	}
	return out
}

// checkSubject accepts a subject that needs no quoting in a config file.
func checkSubject(s string) error {
	if s == "" || strings.ContainsAny(s, " \t\r\n\"'\\{}[],;#") {
		return fmt.Errorf("subject %q is not a NATS subject", s)
	}
	return nil
}

func (s *Security) timeout() time.Duration {
	if s.TLS.Timeout > 0 {
		return s.TLS.Timeout
	}
	return TLSTimeoutDefault
}

// apply sets the server options of s: TLS with client certificates
// checked by a pki.Verifier (CA bundle and revocation list, read again
// when it changes), and one nkey user per identity.
func (s *Security) apply(opts *server.Options) (*pki.Verifier, error) {
	v, err := pki.NewVerifier(s.TLS.Trust)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	tc, err := v.ServerTLS(s.TLS.CertFile, s.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	opts.TLSConfig = tc
	opts.TLSVerify = true
	opts.TLSTimeout = s.timeout().Seconds()
	for _, u := range s.Users {
		opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: u.NKey, Permissions: u.Permissions.server()})
	}
	return v, nil
}

func (p *Permissions) server() *server.Permissions {
	sp := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: p.Publish.Allow, Deny: p.Publish.Deny},
		Subscribe: &server.SubjectPermission{Allow: p.Subscribe.Allow, Deny: p.Subscribe.Deny},
	}
	// An empty allow list means "allow nothing", not "no list".
	if sp.Publish.Allow == nil {
		sp.Publish.Allow = []string{}
	}
	if sp.Subscribe.Allow == nil {
		sp.Subscribe.Allow = []string{}
	}
	if p.Responses {
		sp.Response = &server.ResponsePermission{MaxMsgs: 1, Expires: ResponseExpiryDefault}
	}
	return sp
}
