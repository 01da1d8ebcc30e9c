package stations

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/line"
)

func TestEnsureCertificate(t *testing.T) {
	pki := PKIIn(filepath.Join(t.TempDir(), "pki"))
	pki.ApplicationURI = "urn:test-host:keiline:agent"
	made, err := pki.EnsureCertificate()
	if err != nil || !made {
		t.Fatalf("EnsureCertificate = %v, %v; want a new certificate", made, err)
	}
	der, key, err := pki.Load()
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.URIs) != 1 || c.URIs[0].String() != pki.ApplicationURI {
		t.Errorf("URIs = %v, want the application URI", c.URIs)
	}
	if key.N.BitLen() != CertificateKeyBits || c.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Errorf("key %d bits, signature %s; want %d bits, SHA256-RSA", key.N.BitLen(), c.SignatureAlgorithm, CertificateKeyBits)
	}
	wantUsage := x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment
	if c.KeyUsage&wantUsage != wantUsage {
		t.Errorf("key usage %b lacks %b", c.KeyUsage, wantUsage)
	}
	if len(c.ExtKeyUsage) != 2 {
		t.Errorf("extended key usage %v, want server and client auth", c.ExtKeyUsage)
	}
	fi, err := os.Stat(pki.PrivateKey)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (%v), want 0600", fi.Mode(), err)
	}
	// A second call keeps the certificate.
	made, err = pki.EnsureCertificate()
	der2, _, _ := pki.Load()
	if err != nil || made || string(der2) != string(der) {
		t.Errorf("second EnsureCertificate = %v, %v, changed %v; want it kept", made, err, string(der2) != string(der))
	}
}

func TestLoadReportsMissingCertificateAndForeignKey(t *testing.T) {
	dir := t.TempDir()
	pki := PKIIn(dir)
	if _, _, err := pki.Load(); err == nil || !strings.Contains(err.Error(), "keiline plc cert") {
		t.Errorf("Load of a missing certificate = %v, want the command that makes one", err)
	}
	other := PKIIn(filepath.Join(dir, "other"))
	if _, err := pki.EnsureCertificate(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.EnsureCertificate(); err != nil {
		t.Fatal(err)
	}
	pki.PrivateKey = other.PrivateKey
	if _, _, err := pki.Load(); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("Load with another certificate's key = %v", err)
	}
}

// testCert makes a certificate signed by parent (self-signed when nil).
func testCert(t *testing.T, cn string, isCA bool, notAfter time.Time, parent *x509.Certificate, parentKey *rsa.PrivateKey) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		IsCA: isCA, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func TestCheckServerCertificate(t *testing.T) {
	now := time.Now()
	pki := PKIIn(t.TempDir())
	plc, _ := testCert(t, "PLC W01", false, now.Add(time.Hour), nil, nil)

	// An unknown certificate is refused and saved for approval.
	err := pki.CheckServerCertificate(plc.Raw, now)
	var ce *CertificateError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCertificateUntrusted) {
		t.Fatalf("unknown certificate: %v, want a *CertificateError", err)
	}
	want := filepath.Join(pki.RejectedDir, "PLC W01 ["+Thumbprint(plc.Raw)+"].der")
	if ce.Saved != want {
		t.Errorf("saved as %q, want %q", ce.Saved, want)
	}
	for _, s := range []string{`"CN=PLC W01"`, Thumbprint(plc.Raw), "is not trusted", want, pki.TrustedDir} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message does not say %q: %v", s, err)
		}
	}
	if b, err := os.ReadFile(want); err != nil || string(b) != string(plc.Raw) {
		t.Errorf("rejected file: %v", err)
	}
	// Refused again, it is saved once.
	_ = pki.CheckServerCertificate(plc.Raw, now)
	if ents, _ := os.ReadDir(pki.RejectedDir); len(ents) != 1 {
		t.Errorf("rejected dir has %d files, want 1", len(ents))
	}

	// The integrator approves it.
	if _, err := pki.Trust(Thumbprint(plc.Raw)[:8]); err != nil {
		t.Fatal(err)
	}
	if err := pki.CheckServerCertificate(plc.Raw, now); err != nil {
		t.Errorf("approved certificate refused: %v", err)
	}
	// Once expired it is refused, and not saved again.
	err = pki.CheckServerCertificate(plc.Raw, now.Add(2*time.Hour))
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "not valid now") || ce.Saved != "" {
		t.Errorf("expired certificate: %v", err)
	}
}

func TestCheckServerCertificateIssuedByATrustedCA(t *testing.T) {
	now := time.Now()
	pki := PKIIn(t.TempDir())
	ca, caKey := testCert(t, "Plant CA", true, now.Add(time.Hour), nil, nil)
	leaf, _ := testCert(t, "PLC P01", false, now.Add(time.Hour), ca, caKey)
	if err := os.MkdirAll(pki.TrustedDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pki.TrustedDir, "ca.der"), ca.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pki.CheckServerCertificate(leaf.Raw, now); err != nil {
		t.Errorf("certificate issued by a trusted CA refused: %v", err)
	}
	other, _ := testCert(t, "PLC P02", false, now.Add(time.Hour), nil, nil)
	if err := pki.CheckServerCertificate(other.Raw, now); !errors.Is(err, ErrCertificateUntrusted) {
		t.Errorf("self-signed certificate accepted because a CA is trusted: %v", err)
	}
}

// TestCertificateHintsAreCompleteCommands: a hint names the config (or the
// PKI directory) the integrator works with, so it can be pasted as it is.
func TestCertificateHintsAreCompleteCommands(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "line.yaml")
	y := "version: 1\nplant: US1\nline: L1\nnode_pattern: \"ns=1;s={tag}\"\nstations:\n  - {id: W01, endpoint: \"opc.tcp://127.0.0.1:1\"}\n"
	lc, err := line.Parse(path, []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := PKIOf(lc).command("--trust AB12"), "keiline plc cert --config "+path+" --trust AB12"; got != want {
		t.Errorf("hint %q, want %q", got, want)
	}
	if got, want := PKIIn("/etc/keiline/pki").command("--trust AB12"), "keiline plc cert --pki /etc/keiline/pki --trust AB12"; got != want {
		t.Errorf("hint %q, want %q", got, want)
	}
	_, _, err = PKIOf(lc).Load()
	if err == nil || !strings.Contains(err.Error(), "make it with `keiline plc cert --config "+path+"`") {
		t.Errorf("Load without a certificate = %v, want the command that makes one", err)
	}
}
