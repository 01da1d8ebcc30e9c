package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/pki"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newCA(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	if err := pki.Init(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func issue(t *testing.T, dir, name string, kind pki.Kind) *pki.Certificate {
	t.Helper()
	req := pki.Request{Name: name, Kind: kind}
	if kind == pki.Server {
		req.DNS, req.IPs = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	c, err := pki.Issue(dir, req)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestInitWritesLeastPermissions(t *testing.T) {
	dir := newCA(t)
	for _, tc := range []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700},
		{filepath.Join(dir, pki.CAKeyFile), 0o600},
		{filepath.Join(dir, pki.CACertFile), 0o644},
		{filepath.Join(dir, pki.CRLFile), 0o644},
	} {
		if got := mode(t, tc.path); got != tc.want {
			t.Errorf("%s: mode %o, want %o", tc.path, got, tc.want)
		}
	}
	c := issue(t, dir, "agent-W01", pki.Client)
	if got := mode(t, c.KeyFile); got != 0o600 {
		t.Errorf("%s: mode %o, want 600", c.KeyFile, got)
	}
	if err := pki.Init(dir); !errors.Is(err, pki.ErrExists) {
		t.Errorf("second Init: %v, want ErrExists", err)
	}
}

func TestIssueListRevoke(t *testing.T) {
	dir := newCA(t)
	srv := issue(t, dir, "nats-server", pki.Server)
	w01 := issue(t, dir, "agent-W01", pki.Client)
	if _, err := pki.Issue(dir, pki.Request{Name: "agent-W01", Kind: pki.Client}); !errors.Is(err, pki.ErrExists) || !strings.Contains(err.Error(), w01.Serial) {
		t.Errorf("issue over a valid certificate: %v, want ErrExists naming serial %s", err, w01.Serial)
	}
	renewed, err := pki.Issue(dir, pki.Request{Name: "agent-W01", Kind: pki.Client, Renew: true})
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Serial == w01.Serial {
		t.Fatal("a renewal kept the serial")
	}
	rev, err := pki.Revoke(dir, w01.Serial, pki.Superseded)
	if err != nil {
		t.Fatal(err)
	}
	if !rev.Revoked || rev.Reason != pki.Superseded {
		t.Errorf("Revoke returned %+v", rev)
	}
	if _, err := pki.Revoke(dir, "agent-W01", pki.KeyCompromise); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Revoke(dir, "no-such", pki.KeyCompromise); !errors.Is(err, pki.ErrNotFound) {
		t.Errorf("revoke unknown: %v, want ErrNotFound", err)
	}
	all, err := pki.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]pki.Certificate{}
	for _, c := range all {
		got[c.Serial] = c
	}
	if len(all) != 3 {
		t.Fatalf("List: %d certificates, want 3: %+v", len(all), all)
	}
	for _, tc := range []struct {
		serial  string
		kind    pki.Kind
		revoked bool
		reason  pki.Reason
		current bool
	}{
		{srv.Serial, pki.Server, false, 0, true},
		{w01.Serial, pki.Client, true, pki.Superseded, false},
		{renewed.Serial, pki.Client, true, pki.KeyCompromise, true},
	} {
		c := got[tc.serial]
		if c.Kind != tc.kind || c.Revoked != tc.revoked || c.Reason != tc.reason || (c.CertFile != "") != tc.current {
			t.Errorf("serial %s: kind %s revoked %v reason %s current %v, want %s %v %s %v",
				tc.serial, c.Kind, c.Revoked, c.Reason, c.CertFile != "", tc.kind, tc.revoked, tc.reason, tc.current)
		}
	}
	// A revoked name may be issued again.
	if _, err := pki.Issue(dir, pki.Request{Name: "agent-W01", Kind: pki.Client}); err != nil {
		t.Errorf("issue after revocation: %v", err)
	}
}

func TestIssueRejectsBadRequests(t *testing.T) {
	dir := newCA(t)
	for _, tc := range []struct {
		name string
		req  pki.Request
		want string
	}{
		{"path in name", pki.Request{Name: "../x", Kind: pki.Client}, "certificate name"},
		{"no kind", pki.Request{Name: "x", Kind: "peer"}, `kind "peer"`},
		{"server without names", pki.Request{Name: "x", Kind: pki.Server}, "needs a DNS name"},
		{"too long", pki.Request{Name: "x", Kind: pki.Client, Validity: pki.ValidityMax + time.Hour}, "validity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := pki.Issue(dir, tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Issue(%+v): %v, want an error with %q", tc.req, err, tc.want)
			}
		})
	}
}

func TestParseReason(t *testing.T) {
	if r, err := pki.ParseReason("KEYCOMPROMISE"); err != nil || r != pki.KeyCompromise {
		t.Errorf("ParseReason: %v %v", r, err)
	}
	if _, err := pki.ParseReason("lost"); err == nil || !strings.Contains(err.Error(), "superseded") {
		t.Errorf("ParseReason(lost): %v, want the allowed names", err)
	}
}

// handshake runs one TLS connection on loopback and returns the server's
// and the client's error (nil when the server's "ok" arrived).
func handshake(t *testing.T, srv, cli *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, srv)
		if err := tc.Handshake(); err != nil {
			done <- err
			return
		}
		_, err = tc.Write([]byte("ok"))
		done <- err
	}()
	cli = cli.Clone()
	cli.ServerName = "localhost"
	c, err := tls.Dial("tcp", ln.Addr().String(), cli)
	if err == nil {
		buf := make([]byte, 2)
		_, err = io.ReadFull(c, buf)
		c.Close()
	}
	return <-done, err
}

func configs(t *testing.T, v *pki.Verifier, srv, cli *pki.Certificate) (*tls.Config, *tls.Config) {
	t.Helper()
	sc, err := v.ServerTLS(srv.CertFile, srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := "", ""
	if cli != nil {
		certFile, keyFile = cli.CertFile, cli.KeyFile
	}
	cc, err := v.ClientTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return sc, cc
}

func TestMutualTLSRefusesRevokedClient(t *testing.T) {
	dir := newCA(t)
	srv := issue(t, dir, "nats-server", pki.Server)
	a := issue(t, dir, "agent-W01", pki.Client)
	b := issue(t, dir, "agent-T02", pki.Client)
	v, err := pki.NewVerifier(pki.TrustDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	sc, ca := configs(t, v, srv, a)
	_, cb := configs(t, v, srv, b)
	if se, ce := handshake(t, sc, ca); se != nil || ce != nil {
		t.Fatalf("valid client refused: server %v, client %v", se, ce)
	}
	if _, err := pki.Revoke(dir, "agent-W01", pki.KeyCompromise); err != nil {
		t.Fatal(err)
	}
	// The same verifier reads the new list at the next handshake.
	se, ce := handshake(t, sc, ca)
	if !errors.Is(se, pki.ErrRevoked) || ce == nil {
		t.Errorf("revoked client: server %v, client %v; want ErrRevoked and a refused client", se, ce)
	}
	if se != nil && (!strings.Contains(se.Error(), a.Serial) || !strings.Contains(se.Error(), "agent-W01")) {
		t.Errorf("refusal %q does not name the certificate (agent-W01, serial %s)", se, a.Serial)
	}
	if se, ce := handshake(t, sc, cb); se != nil || ce != nil {
		t.Errorf("other client refused: server %v, client %v", se, ce)
	}
}

func TestMutualTLSRefusesStrangers(t *testing.T) {
	dir := newCA(t)
	other := newCA(t)
	srv := issue(t, dir, "nats-server", pki.Server)
	v, err := pki.NewVerifier(pki.TrustDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	ov, err := pki.NewVerifier(pki.TrustDir(other))
	if err != nil {
		t.Fatal(err)
	}
	stranger := issue(t, other, "agent-W01", pki.Client)
	serverAsClient := issue(t, dir, "dashboard", pki.Server)
	sc, none := configs(t, v, srv, nil)
	strangerCfg, err := ov.ClientTLS(stranger.CertFile, stranger.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	strangerCfg.RootCAs = v.Roots() // it trusts the server; the server does not trust it
	_, wrongUse := configs(t, v, srv, serverAsClient)
	for _, tc := range []struct {
		name string
		cli  *tls.Config
	}{
		{"no certificate", none},
		{"another CA", strangerCfg},
		{"server certificate as a client", wrongUse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if se, ce := handshake(t, sc, tc.cli); se == nil || ce == nil {
				t.Errorf("server %v, client %v; want both to fail", se, ce)
			}
		})
	}
}

func TestClientRefusesRevokedServer(t *testing.T) {
	dir := newCA(t)
	srv := issue(t, dir, "nats-server", pki.Server)
	cli := issue(t, dir, "agent-W01", pki.Client)
	v, err := pki.NewVerifier(pki.TrustDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	sc, cc := configs(t, v, srv, cli)
	if _, err := pki.Revoke(dir, "nats-server", pki.KeyCompromise); err != nil {
		t.Fatal(err)
	}
	if _, ce := handshake(t, sc, cc); !errors.Is(ce, pki.ErrRevoked) {
		t.Errorf("client took a revoked server certificate: %v", ce)
	}
}

// plantCA is a plant's own PKI, made here as a plant would: a root, an
// intermediate that issues the certificates, and revocation lists of both.
type plantCA struct {
	root, inter       *x509.Certificate
	rootKey, interKey *ecdsa.PrivateKey
	dir               string
}

func newPlantCA(t *testing.T) *plantCA {
	t.Helper()
	p := &plantCA{dir: t.TempDir()}
	p.root, p.rootKey = p.cert(t, "Plant Root", nil, nil, true, 0)
	p.inter, p.interKey = p.cert(t, "Plant Issuing CA", p.root, p.rootKey, true, 0)
	b := append(pemCert(p.root), pemCert(p.inter)...)
	if err := os.WriteFile(filepath.Join(p.dir, "bundle.pem"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *plantCA) cert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool, usage x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{"Plant"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), BasicConstraintsValid: true, IsCA: isCA}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		tmpl.DNSNames = []string{"localhost"}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// leaf issues a leaf from the intermediate and writes its chain and key.
func (p *plantCA) leaf(t *testing.T, cn string, usage x509.ExtKeyUsage) (*x509.Certificate, string, string) {
	t.Helper()
	c, key := p.cert(t, cn, p.inter, p.interKey, false, usage)
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(p.dir, cn+".crt"), filepath.Join(p.dir, cn+".key")
	if err := os.WriteFile(certFile, append(pemCert(c), pemCert(p.inter)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c, certFile, keyFile
}

// writeCRLs writes one file with the root's and the intermediate's lists.
func (p *plantCA) writeCRLs(t *testing.T, rootRevokes, interRevokes []*x509.Certificate) string {
	t.Helper()
	var out []byte
	for _, l := range []struct {
		ca      *x509.Certificate
		key     *ecdsa.PrivateKey
		revokes []*x509.Certificate
	}{{p.root, p.rootKey, rootRevokes}, {p.inter, p.interKey, interRevokes}} {
		var entries []x509.RevocationListEntry
		for _, c := range l.revokes {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now(), ReasonCode: 1})
		}
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()),
			ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: entries}, l.ca, l.key)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})...)
	}
	path := filepath.Join(p.dir, "plant.crl")
	if err := os.WriteFile(path+".tmp", out, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	return path
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func TestPlantOwnCA(t *testing.T) {
	p := newPlantCA(t)
	_, srvCert, srvKey := p.leaf(t, "nats-server", x509.ExtKeyUsageServerAuth)
	_, goodCert, goodKey := p.leaf(t, "agent-W01", x509.ExtKeyUsageClientAuth)
	bad, badCert, badKey := p.leaf(t, "agent-T02", x509.ExtKeyUsageClientAuth)
	crl := p.writeCRLs(t, nil, []*x509.Certificate{bad})
	v, err := pki.NewVerifier(pki.Trust{CAFile: filepath.Join(p.dir, "bundle.pem"), CRLFile: crl})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := v.ServerTLS(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	// The clients check the server against the bundle alone: the server's
	// certificate is revoked below with the issuing CA.
	cv, err := pki.NewVerifier(pki.Trust{CAFile: filepath.Join(p.dir, "bundle.pem")})
	if err != nil {
		t.Fatal(err)
	}
	client := func(cert, key string) *tls.Config {
		c, err := cv.ClientTLS(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if se, ce := handshake(t, sc, client(goodCert, goodKey)); se != nil || ce != nil {
		t.Fatalf("plant client refused: server %v, client %v", se, ce)
	}
	if se, _ := handshake(t, sc, client(badCert, badKey)); !errors.Is(se, pki.ErrRevoked) {
		t.Errorf("plant-revoked client: server %v, want ErrRevoked", se)
	}
	// The root revokes the issuing CA: everything it issued is refused.
	p.writeCRLs(t, []*x509.Certificate{p.inter}, nil)
	se, _ := handshake(t, sc, client(goodCert, goodKey))
	if !errors.Is(se, pki.ErrRevoked) || !strings.Contains(se.Error(), "issuer") {
		t.Errorf("client of a revoked issuing CA: server %v, want ErrRevoked naming the issuer", se)
	}
}

func TestVerifierRefusesForeignOrBrokenCRL(t *testing.T) {
	p := newPlantCA(t)
	dir := newCA(t)
	foreign := p.writeCRLs(t, nil, nil)
	if _, err := pki.NewVerifier(pki.Trust{CAFile: filepath.Join(dir, pki.CACertFile), CRLFile: foreign}); err == nil || !strings.Contains(err.Error(), foreign) {
		t.Errorf("a list not signed by the bundle: %v, want an error naming %s", err, foreign)
	}
	// A list that breaks after start refuses every certificate.
	srv := issue(t, dir, "nats-server", pki.Server)
	cli := issue(t, dir, "agent-W01", pki.Client)
	v, err := pki.NewVerifier(pki.TrustDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	crl := filepath.Join(dir, pki.CRLFile)
	if err := os.WriteFile(crl, []byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cv, err := pki.NewVerifier(pki.Trust{CAFile: filepath.Join(dir, pki.CACertFile)})
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := configs(t, v, srv, nil)
	_, cc := configs(t, cv, srv, cli)
	if se, _ := handshake(t, sc, cc); se == nil || !strings.Contains(se.Error(), crl) {
		t.Errorf("broken list: server %v, want a refusal naming %s", se, crl)
	}
}

func FuzzParse(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "ca")
	if err := pki.Init(dir); err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{pki.CACertFile, pki.CRLFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		blk, _ := pem.Decode(b)
		f.Add(blk.Bytes)
	}
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if cs, err := pki.ParseCertificates(b); err == nil && len(cs) == 0 {
			t.Error("no error and no certificate")
		}
		if ls, err := pki.ParseRevocationLists(b); err == nil && len(ls) == 0 {
			t.Error("no error and no list")
		}
	})
}
