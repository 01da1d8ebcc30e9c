package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The self-signed certificate `keiline up` serves HTTPS with when given no
// --tls-cert/--tls-key.
const (
	// SelfSignedValidity is how long a made certificate is valid.
	SelfSignedValidity = 365 * 24 * time.Hour
	// SelfSignedRenewBefore: a certificate expiring sooner is made anew.
	SelfSignedRenewBefore = 30 * 24 * time.Hour
	// CertFileName and KeyFileName are the files in the state dir (the key
	// mode 0600).
	CertFileName = "web-cert.pem"
	KeyFileName  = "web-key.pem"
)

// localHosts are in every self-signed certificate.
var localHosts = []string{"localhost", "127.0.0.1", "::1"}

// LoadTLS returns the server TLS config of a PEM certificate chain and
// key (--tls-cert, --tls-key). The error names the file.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s, key %s: %w", certFile, keyFile, err)
	}
	return serverTLS(cert), nil
}

func serverTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// SelfSignedTLS returns the TLS config of the self-signed certificate in
// dir (CertFileName, KeyFileName), and the certificate's path to tell the
// operator. It makes the certificate when there is none, when it expires
// within SelfSignedRenewBefore of now, or when it does not name every one
// of hosts (names or IP addresses; localhost, 127.0.0.1 and ::1 always).
func SelfSignedTLS(dir string, hosts []string, now time.Time) (*tls.Config, string, error) {
	certPath, keyPath := filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName)
	hosts = append(slices.Clone(localHosts), hosts...)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil && certCovers(cert, hosts, now) {
		return serverTLS(cert), certPath, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("TLS certificate %s: %w (remove it and %s to make a new one)", certPath, err, keyPath)
	}
	certPEM, keyPEM, err := selfSigned(hosts, now)
	if err != nil {
		return nil, "", err
	}
	if err := writeSecret(keyPath, keyPEM); err != nil {
		return nil, "", fmt.Errorf("TLS key %s: %w", keyPath, err)
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return nil, "", fmt.Errorf("TLS certificate %s: %w", certPath, err)
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, "", fmt.Errorf("TLS certificate %s: %w", certPath, err)
	}
	return serverTLS(cert), certPath, nil
}

// certCovers reports whether cert is valid until SelfSignedRenewBefore
// after now and names every host.
func certCovers(cert tls.Certificate, hosts []string, now time.Time) bool {
	if len(cert.Certificate) == 0 {
		return false
	}
	x, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil || now.Add(SelfSignedRenewBefore).After(x.NotAfter) || now.Before(x.NotBefore) {
		return false
	}
	for _, h := range hosts {
		if x.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// selfSigned makes a self-signed ECDSA P-256 server certificate for hosts,
// valid for SelfSignedValidity from now, and returns it and its key as
// PEM. It is the one place certificates are made: a plant CA
// (internal/pki) replaces it.
func selfSigned(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"keiline"}, CommonName: "keiline " + hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(SelfSignedValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}
