// Package pki is keiline's small plant certificate authority: it makes a CA,
// issues server and client certificates signed by it, keeps a register of
// what it issued, and revokes certificates in an X.509 revocation list
// (RFC 5280 §5) that it signs. A Verifier checks a TLS peer's certificate
// against a CA bundle and a revocation list — keiline's own CA, or a
// plant's.
//
// A CA directory holds:
//
//	ca.crt               the CA certificate (public)
//	ca.key               its ECDSA P-256 key (mode 0600)
//	crl.pem              the revocation list the CA signs (public)
//	issued/<serial>.crt  every certificate issued, the CA's register
//	certs/<name>.crt     the newest certificate of each name
//	certs/<name>.key     its key (mode 0600)
//
// Keys are ECDSA P-256: every TLS 1.2 and 1.3 stack (nats-server, nats.go,
// the C and .NET NATS clients) takes them.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Validity defaults and limits.
const (
	// CAValidity is how long a CA made by Init is valid.
	CAValidity = 20 * 365 * 24 * time.Hour
	// ValidityDefault is how long an issued certificate is valid when the
	// request does not say.
	ValidityDefault = 365 * 24 * time.Hour
	// ValidityMax bounds a request's validity.
	ValidityMax = 5 * 365 * 24 * time.Hour
	// CRLValidity is how long a revocation list is current (its
	// NextUpdate); each Revoke and Refresh signs a new one.
	CRLValidity = 365 * 24 * time.Hour
	// clockSkew backdates NotBefore, so a peer whose clock is a little
	// behind still takes a fresh certificate.
	clockSkew = 5 * time.Minute
)

// File names in a CA directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
	CRLFile    = "crl.pem"
	issuedDir  = "issued"
	certsDir   = "certs"
)

// Kind is what a certificate is for.
type Kind string

// The kinds of certificate Issue makes.
const (
	// Server certificates authenticate a server (ExtKeyUsageServerAuth).
	Server Kind = "server"
	// Client certificates authenticate a client (ExtKeyUsageClientAuth).
	Client Kind = "client"
)

// ErrExists is wrapped when Init finds a CA, or Issue finds a valid
// certificate of the name, already there.
var ErrExists = errors.New("already exists")

// ErrNotFound is wrapped when Revoke finds no certificate of the name or
// serial.
var ErrNotFound = errors.New("not found")

// namePattern is what a certificate name may be: it is a file name too.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidName returns an error unless name can name a certificate: 1 to 64
// letters, digits, '.', '_' or '-', starting with a letter or digit.
func ValidName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("certificate name %q: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// Request asks Issue for a certificate.
type Request struct {
	// Name is the certificate's subject common name and its file name
	// (see ValidName). Required.
	Name string
	// Kind is Server or Client. Required.
	Kind Kind
	// DNS and IPs are the subject alternative names. A server certificate
	// needs at least one; clients verify the server's name against them.
	DNS []string
	IPs []net.IP
	// Validity defaults to ValidityDefault; at most ValidityMax, and never
	// past the CA's own expiry.
	Validity time.Duration
	// Renew replaces the newest certificate of Name even while it is
	// valid and not revoked. The old one stays valid until it expires or
	// is revoked.
	Renew bool
}

// Certificate is one certificate the CA issued.
type Certificate struct {
	Serial    string // hexadecimal, lower case
	Name      string // subject common name
	Subject   string
	Kind      Kind
	DNS       []string
	IPs       []net.IP
	NotBefore time.Time
	NotAfter  time.Time
	Revoked   bool
	RevokedAt time.Time
	Reason    Reason
	// CertFile and KeyFile are set for the newest certificate of a name:
	// the files a part is given.
	CertFile, KeyFile string
	// Cert is the parsed certificate.
	Cert *x509.Certificate
}

// Init makes a CA in dir (created with mode 0700 when missing): a P-256
// key (ca.key, 0600), a self-signed CA certificate (ca.crt) and an empty
// revocation list (crl.pem). It returns an error wrapping ErrExists when
// dir already holds a CA key, and never overwrites one.
func Init(dir string) error {
	if err := os.MkdirAll(dir, ModeDir); err != nil {
		return fmt.Errorf("pki: CA directory %s: %w", dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer unlock()
	keyPath := filepath.Join(dir, CAKeyFile)
	if _, err := os.Stat(keyPath); err == nil {
		return fmt.Errorf("pki: CA key %s: %w", keyPath, ErrExists)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "keiline plant CA " + serial.Text(16)[:8], Organization: []string{"keiline"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("pki: CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("pki: CA certificate: %w", err)
	}
	kb, err := encodeKey(key)
	if err != nil {
		return fmt.Errorf("pki: CA key: %w", err)
	}
	for _, d := range []string{issuedDir, certsDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), ModeDir); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
	}
	if err := writeFile(keyPath, kb, ModeKey); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := writeFile(filepath.Join(dir, CACertFile), encodeCert(der), ModeCert); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := writeCRL(dir, &ca{cert: caCert, key: key}, nil, big.NewInt(1), now); err != nil {
		return err
	}
	return nil
}

// Issue issues a certificate for req signed by the CA in dir, with a new
// P-256 key. It writes certs/<name>.crt, certs/<name>.key (0600) and the
// register's issued/<serial>.crt, and returns the certificate. It returns
// an error wrapping ErrExists when the name's newest certificate is still
// valid and not revoked, unless req.Renew.
func Issue(dir string, req Request) (*Certificate, error) {
	if err := req.validate(); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	defer unlock()
	ca, err := loadCA(dir)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	certPath, keyPath := filepath.Join(dir, certsDir, req.Name+".crt"), filepath.Join(dir, certsDir, req.Name+".key")
	if old, err := LoadCertificate(certPath); err == nil && !req.Renew {
		revoked, err := ca.revoked(dir)
		if err != nil {
			return nil, err
		}
		if _, r := revoked[serialText(old.SerialNumber)]; !r && now.Before(old.NotAfter) {
			return nil, fmt.Errorf("pki: certificate %q (serial %s, valid until %s) in %s: %w; revoke it or renew it",
				req.Name, serialText(old.SerialNumber), old.NotAfter.Format(time.RFC3339), certPath, ErrExists)
		}
	}
	validity := req.Validity
	if validity == 0 {
		validity = ValidityDefault
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		return nil, fmt.Errorf("pki: certificate %q: validity %s ends after the CA's expiry (%s)", req.Name, validity, ca.cert.NotAfter.Format(time.RFC3339))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate %q: key: %w", req.Name, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	usage := x509.ExtKeyUsageClientAuth
	if req.Kind == Server {
		usage = x509.ExtKeyUsageServerAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.Name, Organization: []string{"keiline"}, OrganizationalUnit: []string{string(req.Kind)}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
		DNSNames:              req.DNS,
		IPAddresses:           req.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate %q: %w", req.Name, err)
	}
	kb, err := encodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate %q: key: %w", req.Name, err)
	}
	// The register first: a certificate in use is always in it.
	if err := writeFile(filepath.Join(dir, issuedDir, serialText(serial)+".crt"), encodeCert(der), ModeCert); err != nil {
		return nil, fmt.Errorf("pki: certificate %q: %w", req.Name, err)
	}
	if err := writeFile(keyPath, kb, ModeKey); err != nil {
		return nil, fmt.Errorf("pki: certificate %q: %w", req.Name, err)
	}
	if err := writeFile(certPath, encodeCert(der), ModeCert); err != nil {
		return nil, fmt.Errorf("pki: certificate %q: %w", req.Name, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate %q: %w", req.Name, err)
	}
	out := describe(c)
	out.CertFile, out.KeyFile = certPath, keyPath
	return out, nil
}

func (r *Request) validate() error {
	if err := ValidName(r.Name); err != nil {
		return err
	}
	switch r.Kind {
	case Server:
		if len(r.DNS) == 0 && len(r.IPs) == 0 {
			return fmt.Errorf("certificate %q: a server certificate needs a DNS name or an IP address", r.Name)
		}
	case Client:
	default:
		return fmt.Errorf("certificate %q: kind %q, want %q or %q", r.Name, r.Kind, Server, Client)
	}
	if r.Validity < 0 || r.Validity > ValidityMax {
		return fmt.Errorf("certificate %q: validity %s outside 0..%s", r.Name, r.Validity, ValidityMax)
	}
	for _, d := range r.DNS {
		if d == "" || strings.ContainsAny(d, " \t\r\n/\\") {
			return fmt.Errorf("certificate %q: DNS name %q is not a host name", r.Name, d)
		}
	}
	return nil
}

// List returns every certificate in the register of the CA in dir, oldest
// first, each marked revoked or not; the newest of each name carries its
// files.
func List(dir string) ([]Certificate, error) {
	ca, err := loadCA(dir)
	if err != nil {
		return nil, err
	}
	revoked, err := ca.revoked(dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(dir, issuedDir))
	if err != nil {
		return nil, fmt.Errorf("pki: register: %w", err)
	}
	var out []Certificate
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".crt") {
			continue
		}
		path := filepath.Join(dir, issuedDir, e.Name())
		c, err := LoadCertificate(path)
		if err != nil {
			return nil, fmt.Errorf("pki: register: %w", err)
		}
		d := describe(c)
		if r, ok := revoked[d.Serial]; ok {
			d.Revoked, d.RevokedAt, d.Reason = true, r.RevocationTime, Reason(r.ReasonCode)
		}
		cur := filepath.Join(dir, certsDir, d.Name+".crt")
		if nc, err := LoadCertificate(cur); err == nil && nc.SerialNumber.Cmp(c.SerialNumber) == 0 {
			d.CertFile, d.KeyFile = cur, filepath.Join(dir, certsDir, d.Name+".key")
		}
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Certificate) int {
		if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
			return c
		}
		return strings.Compare(a.Serial, b.Serial)
	})
	return out, nil
}

// Current returns the newest certificate of name in the CA in dir, with
// its files, or an error wrapping ErrNotFound.
func Current(dir, name string) (*Certificate, error) {
	all, err := List(dir)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Name == name && all[i].CertFile != "" {
			return &all[i], nil
		}
	}
	return nil, fmt.Errorf("pki: certificate %q in %s: %w", name, dir, ErrNotFound)
}

func describe(c *x509.Certificate) *Certificate {
	d := &Certificate{Serial: serialText(c.SerialNumber), Name: c.Subject.CommonName, Subject: c.Subject.String(),
		DNS: c.DNSNames, IPs: c.IPAddresses, NotBefore: c.NotBefore, NotAfter: c.NotAfter, Cert: c}
	for _, u := range c.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageServerAuth:
			d.Kind = Server
		case x509.ExtKeyUsageClientAuth:
			d.Kind = Client
		}
	}
	return d
}

// ca is a loaded CA: its certificate and key.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func loadCA(dir string) (*ca, error) {
	certPath := filepath.Join(dir, CACertFile)
	c, err := LoadCertificate(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w (make a CA with Init)", err)
	}
	keyPath := filepath.Join(dir, CAKeyFile)
	k, err := loadKey(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: CA key: %w", err)
	}
	if !k.PublicKey.Equal(c.PublicKey) {
		return nil, fmt.Errorf("pki: CA key %s does not belong to the CA certificate %s", keyPath, certPath)
	}
	return &ca{cert: c, key: k}, nil
}

func newSerial() (*big.Int, error) {
	// 127 random bits: positive, unique, at most 20 octets (RFC 5280 §4.1.2.2).
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

// serialText is the register's spelling of a serial number.
func serialText(s *big.Int) string { return s.Text(16) }

// ParseSerial reads a serial number in hexadecimal, with or without
// colons (as openssl prints it) or a 0x prefix.
func ParseSerial(s string) (*big.Int, error) {
	t := strings.ToLower(strings.TrimPrefix(strings.ReplaceAll(s, ":", ""), "0x"))
	n, ok := new(big.Int).SetString(t, 16)
	if !ok || n.Sign() <= 0 {
		return nil, fmt.Errorf("serial %q: want a positive hexadecimal number", s)
	}
	return n, nil
}
