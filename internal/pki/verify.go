package pki

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrRevoked is wrapped by the error of a certificate a revocation list
// names.
var ErrRevoked = errors.New("certificate is revoked")

// Trust is what peers' certificates are checked against: keiline's CA
// (TrustDir) or a plant's own.
type Trust struct {
	// CAFile is a PEM bundle of CA certificates (or one DER certificate).
	// A peer's chain must end at one of them. Required.
	CAFile string
	// CRLFile holds revocation lists (PEM X509 CRL blocks, or one DER
	// list), each signed by a CA of the bundle. Optional. It is read
	// again whenever it changes, so a revocation takes effect for the
	// next handshake; while it is unreadable or broken every certificate
	// is refused (a verifier never forgets a revocation).
	CRLFile string
	// Now is the clock for expiry checks. Defaults to time.Now.
	Now func() time.Time
}

// TrustDir returns the Trust of keiline's CA in dir: its certificate and
// its revocation list.
func TrustDir(dir string) Trust {
	return Trust{CAFile: filepath.Join(dir, CACertFile), CRLFile: filepath.Join(dir, CRLFile)}
}

// Verifier checks peer certificates against a Trust. It is safe for
// concurrent use by many handshakes.
type Verifier struct {
	trust Trust
	cas   []*x509.Certificate
	roots *x509.CertPool

	mu      sync.Mutex
	crlInfo os.FileInfo                                    // the CRL file as last read
	revoked map[string]map[string]x509.RevocationListEntry // issuer's raw subject → serial → entry
	crlErr  error                                          // why the CRL file cannot be used, or nil
}

// NewVerifier loads t's CA bundle and revocation list. It returns an error
// naming the file when either cannot be read or parsed, or when a list is
// not signed by a CA of the bundle.
func NewVerifier(t Trust) (*Verifier, error) {
	if t.CAFile == "" {
		return nil, errors.New("pki: trust: CAFile is required")
	}
	if t.Now == nil {
		t.Now = time.Now
	}
	b, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("pki: CA bundle: %w", err)
	}
	cas, err := ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("pki: CA bundle %s: %w", t.CAFile, err)
	}
	v := &Verifier{trust: t, cas: cas, roots: x509.NewCertPool()}
	for _, c := range cas {
		if !c.IsCA {
			return nil, fmt.Errorf("pki: CA bundle %s: %q (serial %s) is not a CA certificate", t.CAFile, c.Subject, serialText(c.SerialNumber))
		}
		v.roots.AddCert(c)
	}
	if t.CRLFile != "" {
		v.mu.Lock()
		v.refreshLocked()
		err := v.crlErr
		v.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Roots returns the CA bundle as a pool.
func (v *Verifier) Roots() *x509.CertPool { return v.roots }

// VerifyClient checks a TLS client's certificate chain (for a server's
// tls.Config.VerifyConnection): it must lead to a CA of the bundle, be
// valid now, be meant for client authentication, and neither it nor an
// intermediate may be revoked. The error names the certificate.
func (v *Verifier) VerifyClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("pki: the client sent no certificate")
	}
	return v.Verify(cs.PeerCertificates, x509.ExtKeyUsageClientAuth)
}

// VerifyServer checks a TLS server's certificate chain (for a client's
// tls.Config.VerifyConnection) as VerifyClient does, for server
// authentication; the host name is checked by crypto/tls itself.
func (v *Verifier) VerifyServer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("pki: the server sent no certificate")
	}
	return v.Verify(cs.PeerCertificates, x509.ExtKeyUsageServerAuth)
}

// Verify checks chain (the leaf first, then any intermediates) for usage.
func (v *Verifier) Verify(chain []*x509.Certificate, usage x509.ExtKeyUsage) error {
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	verified, err := leaf.Verify(x509.VerifyOptions{Roots: v.roots, Intermediates: inter, CurrentTime: v.trust.Now(), KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return fmt.Errorf("pki: certificate %s: not trusted by %s: %w", Describe(leaf), v.trust.CAFile, err)
	}
	if v.trust.CRLFile == "" {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.refreshLocked()
	if v.crlErr != nil {
		return fmt.Errorf("pki: certificate %s refused: %w", Describe(leaf), v.crlErr)
	}
	// Every certificate of every chain, the anchor too: a bundle may hold
	// an intermediate that its root's list revokes.
	for _, ch := range verified {
		for _, c := range ch {
			if err := v.checkLocked(c); err != nil {
				if c != leaf {
					return fmt.Errorf("pki: certificate %s: issuer: %w", Describe(leaf), err)
				}
				return err
			}
		}
	}
	return nil
}

// CheckRevoked returns an error wrapping ErrRevoked when a revocation list
// names c, and the CRL file's error when it cannot be used.
func (v *Verifier) CheckRevoked(c *x509.Certificate) error {
	if v.trust.CRLFile == "" {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.refreshLocked()
	if v.crlErr != nil {
		return v.crlErr
	}
	return v.checkLocked(c)
}

func (v *Verifier) checkLocked(c *x509.Certificate) error {
	if e, ok := v.revoked[string(c.RawIssuer)][serialText(c.SerialNumber)]; ok {
		return fmt.Errorf("pki: certificate %s: %w (%s, %s) by %s", Describe(c), ErrRevoked,
			Reason(e.ReasonCode), e.RevocationTime.UTC().Format(time.RFC3339), v.trust.CRLFile)
	}
	return nil
}

// refreshLocked reads the CRL file again when it changed since the last
// read (another inode, size or modification time).
func (v *Verifier) refreshLocked() {
	path := v.trust.CRLFile
	fi, err := os.Stat(path)
	if err != nil {
		v.crlInfo, v.crlErr = nil, fmt.Errorf("revocation list: %w", err)
		return
	}
	if old := v.crlInfo; old != nil && os.SameFile(old, fi) && old.Size() == fi.Size() && old.ModTime().Equal(fi.ModTime()) {
		return
	}
	revoked, err := v.loadCRL(path)
	if err != nil {
		v.crlInfo, v.crlErr = nil, err
		return
	}
	v.crlInfo, v.revoked, v.crlErr = fi, revoked, nil
}

func (v *Verifier) loadCRL(path string) (map[string]map[string]x509.RevocationListEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	lists, err := ParseRevocationLists(b)
	if err != nil {
		return nil, fmt.Errorf("revocation list %s: %w", path, err)
	}
	out := map[string]map[string]x509.RevocationListEntry{}
	for i, l := range lists {
		var issuer *x509.Certificate
		for _, c := range v.cas {
			if bytes.Equal(c.RawSubject, l.RawIssuer) && l.CheckSignatureFrom(c) == nil {
				issuer = c
				break
			}
		}
		if issuer == nil {
			return nil, fmt.Errorf("revocation list %s: list %d (issuer %q) is not signed by a CA of %s", path, i+1, l.Issuer, v.trust.CAFile)
		}
		m := out[string(issuer.RawSubject)]
		if m == nil {
			m = map[string]x509.RevocationListEntry{}
			out[string(issuer.RawSubject)] = m
		}
		for _, e := range l.RevokedCertificateEntries {
			m[serialText(e.SerialNumber)] = e
		}
	}
	return out, nil
}

// ServerTLS returns a TLS server config with the certificate and key in
// the files that requires every client to present a certificate this
// verifier accepts (mutual TLS).
func (v *Verifier) ServerTLS(certFile, keyFile string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: server certificate %s, key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		Certificates:     []tls.Certificate{pair},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        v.roots,
		VerifyConnection: v.VerifyClient,
	}, nil
}

// ClientTLS returns a TLS client config that presents the certificate and
// key in the files (none when certFile is empty) and accepts only a server
// certificate this verifier accepts.
func (v *Verifier) ClientTLS(certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: v.roots, VerifyConnection: v.VerifyServer}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("pki: client certificate %s, key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Describe names a certificate for an error: its subject and serial.
func Describe(c *x509.Certificate) string {
	return fmt.Sprintf("%q (serial %s)", c.Subject.String(), serialText(c.SerialNumber))
}

// PublicKeyPin returns the hex SHA-256 of the certificate's
// SubjectPublicKeyInfo: what nats-server's tls pinned_certs lists.
func PublicKeyPin(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(h[:])
}
