package stations

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/keiline/keiline/line"
)

// The agent's application instance certificate and the trust lists of PLC
// server certificates, kept in a PKI directory as OPC UA tools do:
//
//	pki/own/cert.der    the agent's certificate (keiline plc cert makes it)
//	pki/own/key.pem     its RSA private key (mode 0600)
//	pki/trusted/        PLC certificates (DER or PEM) the integrator trusts,
//	                    or CA certificates whose issued certificates are trusted
//	pki/rejected/       unknown PLC certificates, saved for the integrator to
//	                    approve by moving them to trusted/

// Certificate defaults.
const (
	// CertificateKeyBits is the RSA key size of a created certificate; the
	// allowed policies need 2048 to 4096 bits.
	CertificateKeyBits = 2048
	// CertificateValidity is how long a created certificate is valid.
	CertificateValidity = 5 * 365 * 24 * time.Hour
)

// ErrCertificateUntrusted is wrapped by the error of a connection refused
// because the PLC's server certificate is not in the trust list.
var ErrCertificateUntrusted = errors.New("server certificate is not trusted")

// PKI is a resolved PKI directory.
type PKI struct {
	Certificate    string // the agent's certificate file
	PrivateKey     string // its key file
	TrustedDir     string
	RejectedDir    string
	ApplicationURI string // for a certificate yet to be made
	// Flags select this PKI on keiline plc cert's command line
	// ("--config line.yaml" or "--pki dir"), for the commands hints give.
	Flags string
}

// command is a complete keiline plc cert command for this PKI.
func (p PKI) command(args string) string {
	cmd := "keiline plc cert"
	if p.Flags != "" {
		cmd += " " + p.Flags
	}
	return cmd + " " + args
}

// PKIOf returns the line config's PKI with paths resolved against the
// config file's directory and defaults filled in.
func PKIOf(c *line.Config) PKI {
	dir := c.PKI.Dir
	if dir == "" {
		dir = line.PKIDirDefault
	}
	dir = c.Resolve(dir)
	flags := "--pki " + dir
	if c.Path() != "" {
		flags = "--config " + c.Path()
	}
	p := PKI{
		Flags:          flags,
		Certificate:    filepath.Join(dir, "own", "cert.der"),
		PrivateKey:     filepath.Join(dir, "own", "key.pem"),
		TrustedDir:     filepath.Join(dir, "trusted"),
		RejectedDir:    filepath.Join(dir, "rejected"),
		ApplicationURI: c.PKI.ApplicationURI,
	}
	if c.PKI.Certificate != "" {
		p.Certificate = c.Resolve(c.PKI.Certificate)
		p.PrivateKey = c.Resolve(c.PKI.PrivateKey)
	}
	return p
}

// PKIIn returns the default layout of a PKI directory.
func PKIIn(dir string) PKI {
	return PKI{
		Flags:       "--pki " + dir,
		Certificate: filepath.Join(dir, "own", "cert.der"),
		PrivateKey:  filepath.Join(dir, "own", "key.pem"),
		TrustedDir:  filepath.Join(dir, "trusted"),
		RejectedDir: filepath.Join(dir, "rejected"),
	}
}

// DefaultApplicationURI is the application URI of a certificate made
// without one configured: urn:<host name>:keiline:agent.
func DefaultApplicationURI() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return "urn:" + host + ":keiline:agent"
}

// EnsureCertificate makes the agent's application instance certificate and
// key when the certificate file does not exist yet, and reports whether it
// did. A self-signed certificate is made: RSA 2048, SHA-256, the
// application URI and the host's names in its subject alternative name,
// usable as client and server certificate, valid CertificateValidity.
func (p PKI) EnsureCertificate() (bool, error) {
	if _, err := os.Stat(p.Certificate); err == nil {
		_, _, err := p.Load()
		return false, err
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("application certificate: %w", err)
	}
	uri := p.ApplicationURI
	if uri == "" {
		uri = DefaultApplicationURI()
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return false, fmt.Errorf("application certificate: application URI %q is not a URI (want urn:... )", uri)
	}
	key, err := rsa.GenerateKey(rand.Reader, CertificateKeyBits)
	if err != nil {
		return false, fmt.Errorf("application certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return false, fmt.Errorf("application certificate: %w", err)
	}
	host, _ := os.Hostname()
	dns := []string{"localhost"}
	if host != "" && host != "localhost" {
		dns = append([]string{host}, dns...)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   "keiline agent",
			Organization: []string{"keiline"},
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CertificateValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              dns,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return false, fmt.Errorf("application certificate: %w", err)
	}
	for _, d := range []string{filepath.Dir(p.Certificate), filepath.Dir(p.PrivateKey), p.TrustedDir, p.RejectedDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return false, fmt.Errorf("application certificate: %w", err)
		}
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := writeNew(p.PrivateKey, keyPEM, 0o600); err != nil {
		return false, fmt.Errorf("application certificate: %w", err)
	}
	if err := writeNew(p.Certificate, der, 0o644); err != nil {
		return false, fmt.Errorf("application certificate: %w", err)
	}
	return true, nil
}

// writeNew writes b to a new file at path, through a temporary file, so a
// reader never sees half a file.
func writeNew(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Load reads the agent's certificate (DER) and private key. A missing
// certificate is reported with the command that makes one.
func (p PKI) Load() ([]byte, *rsa.PrivateKey, error) {
	der, err := readCertificate(p.Certificate)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("application certificate %s does not exist: make it with `%s`", p.Certificate, strings.TrimSpace(p.command("")))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("application certificate %s: %w", p.Certificate, err)
	}
	key, err := readPrivateKey(p.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("application certificate key %s: %w", p.PrivateKey, err)
	}
	cert, _ := x509.ParseCertificate(der)
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, fmt.Errorf("application certificate %s: the key %s does not belong to it", p.Certificate, p.PrivateKey)
	}
	return der, key, nil
}

// readCertificate reads one certificate in DER or PEM and returns its DER.
func readCertificate(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q, want CERTIFICATE", blk.Type)
		}
		b = blk.Bytes
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		return nil, err
	}
	return b, nil
}

// readPrivateKey reads an RSA private key in PEM (PKCS #1 or PKCS #8) or DER.
func readPrivateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if k, err := x509.ParsePKCS1PrivateKey(b); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b)
	if err != nil {
		return nil, errors.New("not an RSA private key in PEM or DER")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%T is not an RSA key", k)
	}
	return rk, nil
}

// Thumbprint is the SHA-1 thumbprint of a DER certificate in upper-case
// hex, as OPC UA tools show it.
func Thumbprint(der []byte) string {
	s := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

// CertificateError is a PLC server certificate keiline refuses.
type CertificateError struct {
	Endpoint   string
	Subject    string // the certificate's subject
	Thumbprint string
	// Reason says why: not in the trust list, expired, ...
	Reason string
	// Saved is where an unknown certificate was saved for approval, "" if
	// it was not.
	Saved      string
	TrustedDir string
	// Trust is the complete command that trusts it.
	Trust string
}

func (e *CertificateError) Error() string {
	msg := fmt.Sprintf("server certificate %q (thumbprint %s) %s", e.Subject, e.Thumbprint, e.Reason)
	if e.Saved != "" {
		msg += fmt.Sprintf("; it was saved as %s: if it is this PLC's certificate, move it to %s (or run `%s`)",
			e.Saved, e.TrustedDir, e.Trust)
	}
	return msg
}

func (e *CertificateError) Unwrap() error { return ErrCertificateUntrusted }

// CheckServerCertificate checks the DER certificate a PLC presents against
// the trusted directory: it is trusted when the same certificate is there,
// or when it was issued by a CA certificate that is there, and it is
// within its validity period. An unknown certificate is saved in the
// rejected directory (named by subject and thumbprint) and refused with a
// *CertificateError; so is an expired one.
func (p PKI) CheckServerCertificate(der []byte, now time.Time) error {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	ce := &CertificateError{Subject: cert.Subject.String(), Thumbprint: Thumbprint(der), TrustedDir: p.TrustedDir}
	ce.Trust = p.command("--trust " + ce.Thumbprint)
	trusted, err := p.trusted()
	if err != nil {
		return err
	}
	known := slices.ContainsFunc(trusted, func(t *x509.Certificate) bool { return bytes.Equal(t.Raw, der) })
	if !known {
		roots := x509.NewCertPool()
		for _, t := range trusted {
			if t.IsCA {
				roots.AddCert(t)
			}
		}
		_, verr := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		known = verr == nil
	}
	if !known {
		saved, err := p.reject(cert)
		if err != nil {
			return err
		}
		ce.Reason = "is not trusted"
		ce.Saved = saved
		return ce
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		ce.Reason = fmt.Sprintf("is trusted but not valid now (valid %s to %s)", cert.NotBefore.Format(time.DateOnly), cert.NotAfter.Format(time.DateOnly))
		return ce
	}
	return nil
}

// trusted reads every certificate in the trusted directory. Files that are
// not certificates are skipped.
func (p PKI) trusted() ([]*x509.Certificate, error) {
	ents, err := os.ReadDir(p.TrustedDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trusted certificates: %w", err)
	}
	var out []*x509.Certificate
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(p.TrustedDir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("trusted certificates: %w", err)
		}
		for len(b) > 0 {
			blk, rest := pem.Decode(b)
			if blk == nil {
				if c, err := x509.ParseCertificate(b); err == nil {
					out = append(out, c)
				}
				break
			}
			if blk.Type == "CERTIFICATE" {
				if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
					out = append(out, c)
				}
			}
			b = rest
		}
	}
	return out, nil
}

// reject saves cert in the rejected directory and returns the file name.
func (p PKI) reject(cert *x509.Certificate) (string, error) {
	if err := os.MkdirAll(p.RejectedDir, 0o700); err != nil {
		return "", fmt.Errorf("rejected certificates: %w", err)
	}
	path := filepath.Join(p.RejectedDir, certFileName(cert))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := writeNew(path, cert.Raw, 0o644); err != nil {
		return "", fmt.Errorf("rejected certificates: %w", err)
	}
	return path, nil
}

// certFileName is "<common name> [<thumbprint>].der", the name OPC UA tools
// give a certificate in their stores.
func certFileName(cert *x509.Certificate) string {
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == '[' || r == ']' {
			return '_'
		}
		return r
	}, cert.Subject.CommonName)
	if name == "" {
		name = "certificate"
	}
	return fmt.Sprintf("%s [%s].der", name, Thumbprint(cert.Raw))
}

// CertificateInfo describes a certificate of a PKI directory.
type CertificateInfo struct {
	File       string
	Subject    string
	Thumbprint string
	URI        string
	NotAfter   time.Time
}

// ListCertificates returns the certificates in dir (trusted or rejected), by file name.
func ListCertificates(dir string) ([]CertificateInfo, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []CertificateInfo
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		der, err := readCertificate(path)
		if err != nil {
			continue
		}
		out = append(out, describe(path, der))
	}
	return out, nil
}

func describe(path string, der []byte) CertificateInfo {
	c, _ := x509.ParseCertificate(der)
	info := CertificateInfo{File: path, Subject: c.Subject.String(), Thumbprint: Thumbprint(der), NotAfter: c.NotAfter}
	if len(c.URIs) > 0 {
		info.URI = c.URIs[0].String()
	}
	return info
}

// Describe returns the agent's own certificate's description.
func (p PKI) Describe() (CertificateInfo, error) {
	der, _, err := p.Load()
	if err != nil {
		return CertificateInfo{}, err
	}
	return describe(p.Certificate, der), nil
}

// Trust moves the rejected certificate whose thumbprint (or a unique prefix
// of it, or its file name) is which into the trusted directory and returns
// its new path.
func (p PKI) Trust(which string) (string, error) {
	rejected, err := ListCertificates(p.RejectedDir)
	if err != nil {
		return "", fmt.Errorf("rejected certificates: %w", err)
	}
	var match []CertificateInfo
	for _, c := range rejected {
		if strings.HasPrefix(c.Thumbprint, strings.ToUpper(which)) || filepath.Base(c.File) == filepath.Base(which) {
			match = append(match, c)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("no rejected certificate in %s matches %q", p.RejectedDir, which)
	case 1:
	default:
		return "", fmt.Errorf("%d rejected certificates match %q; give more of the thumbprint", len(match), which)
	}
	if err := os.MkdirAll(p.TrustedDir, 0o700); err != nil {
		return "", err
	}
	to := filepath.Join(p.TrustedDir, filepath.Base(match[0].File))
	if err := os.Rename(match[0].File, to); err != nil {
		return "", err
	}
	return to, nil
}
