package broker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/keiline/keiline/internal/pki"
	"github.com/nats-io/nkeys"
)

// RenewBeforeDefault: Provision renews a certificate that expires sooner.
const RenewBeforeDefault = 30 * 24 * time.Hour

// Directories Provision makes.
const (
	caDirName    = "ca"
	nkeysDirName = "nkeys"
	credsDirName = "creds"
)

// ProvisionOptions tune Provision.
type ProvisionOptions struct {
	// ServerDNS and ServerIPs are the names clients reach the server by,
	// put in its certificate. Default to localhost, 127.0.0.1 and ::1.
	ServerDNS []string
	ServerIPs []net.IP
	// Plant, when set, is the plant's own CA: keiline issues no
	// certificate and uses the plant's.
	Plant *PlantPKI
	// RenewBefore defaults to RenewBeforeDefault.
	RenewBefore time.Duration
}

// PlantPKI is a plant's own CA and the certificates it issued to the
// parts.
type PlantPKI struct {
	// Trust is the plant's CA bundle and revocation list.
	Trust pki.Trust
	// Certs are the certificate and key of every part by its name, and
	// the server's under ServerCertName.
	Certs map[string]CertFiles
}

// CertFiles are a certificate file and its key file.
type CertFiles struct {
	Cert, Key string
}

// Provisioned is what Provision made: the server's Security and each
// part's Credentials, by part name.
type Provisioned struct {
	Security    Security
	Credentials map[string]*Credentials
	// CADir is keiline's CA directory ("" with a plant's own CA): where
	// pki.Revoke revokes a part's certificate.
	CADir string
}

// Provision makes, in dir, what the parts need and reuses what is there:
// keiline's CA (dir/ca, unless opts.Plant), the server's certificate, and
// for each part an nkey seed (dir/nkeys/<name>.nk, mode 0600), a client
// certificate and a credentials file naming them (dir/creds/<name>.json).
// A certificate close to expiry, or a server certificate whose names
// changed, is renewed. A part whose certificate is revoked is an error:
// an operator issues it a new one (pki.Issue) on purpose. A compromised
// nkey is replaced by deleting its seed file. Provision returns the
// server's Security (give it to Config.Security or WriteConfig) and every
// part's Credentials.
func Provision(dir string, parts Parts, opts ProvisionOptions) (*Provisioned, error) {
	if err := parts.Validate(); err != nil {
		return nil, fmt.Errorf("broker: provision: %w", err)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("broker: provision: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, nkeysDirName), filepath.Join(dir, credsDirName)} {
		if err := os.MkdirAll(d, pki.ModeDir); err != nil {
			return nil, fmt.Errorf("broker: provision: %w", err)
		}
	}
	if opts.RenewBefore <= 0 {
		opts.RenewBefore = RenewBeforeDefault
	}
	if len(opts.ServerDNS) == 0 && len(opts.ServerIPs) == 0 {
		opts.ServerDNS, opts.ServerIPs = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	var certs certSource
	if opts.Plant != nil {
		certs = &plantCerts{p: opts.Plant}
	} else {
		kc, err := newKeilineCerts(filepath.Join(dir, caDirName), opts)
		if err != nil {
			return nil, err
		}
		certs = kc
	}
	out := &Provisioned{Credentials: map[string]*Credentials{}}
	if kc, ok := certs.(*keilineCerts); ok {
		out.CADir = kc.dir
	}
	srv, err := certs.server()
	if err != nil {
		return nil, err
	}
	trust := certs.trust()
	out.Security.TLS = TLS{CertFile: srv.Cert, KeyFile: srv.Key, Trust: trust}
	for _, p := range parts {
		cf, err := certs.client(p.Name)
		if err != nil {
			return nil, err
		}
		seed := filepath.Join(dir, nkeysDirName, p.Name+".nk")
		pub, err := ensureNKey(seed)
		if err != nil {
			return nil, fmt.Errorf("broker: provision %s: %w", p.Name, err)
		}
		perm, err := parts.Permissions(p.Name)
		if err != nil {
			return nil, err
		}
		out.Security.Users = append(out.Security.Users, User{Name: p.Name, NKey: pub, CertFile: cf.Cert, Permissions: perm})
		c := &Credentials{Name: p.Name, NKeyFile: seed, CertFile: cf.Cert, KeyFile: cf.Key, CAFile: trust.CAFile, CRLFile: trust.CRLFile,
			InboxPrefix: p.InboxPrefix()}
		if err := c.Write(filepath.Join(dir, credsDirName, p.Name+".json")); err != nil {
			return nil, err
		}
		out.Credentials[p.Name] = c
	}
	return out, nil
}

// certSource gives the server's and the parts' certificates.
type certSource interface {
	trust() pki.Trust
	server() (CertFiles, error)
	client(name string) (CertFiles, error)
}

type plantCerts struct{ p *PlantPKI }

func (c *plantCerts) trust() pki.Trust { return c.p.Trust }

func (c *plantCerts) server() (CertFiles, error) { return c.get(ServerCertName) }

func (c *plantCerts) client(name string) (CertFiles, error) { return c.get(name) }

func (c *plantCerts) get(name string) (CertFiles, error) {
	f, ok := c.p.Certs[name]
	if !ok || f.Cert == "" || f.Key == "" {
		return CertFiles{}, fmt.Errorf("broker: provision: the plant's PKI names no certificate and key for %q", name)
	}
	return f, nil
}

// keilineCerts issues from keiline's CA.
type keilineCerts struct {
	dir     string
	opts    ProvisionOptions
	current map[string]pki.Certificate // newest certificate of each name
}

func newKeilineCerts(dir string, opts ProvisionOptions) (*keilineCerts, error) {
	if err := pki.Init(dir); err != nil && !errors.Is(err, pki.ErrExists) {
		return nil, fmt.Errorf("broker: provision: %w", err)
	}
	all, err := pki.List(dir)
	if err != nil {
		return nil, fmt.Errorf("broker: provision: %w", err)
	}
	kc := &keilineCerts{dir: dir, opts: opts, current: map[string]pki.Certificate{}}
	for _, c := range all {
		if c.CertFile != "" {
			kc.current[c.Name] = c
		}
	}
	return kc, nil
}

func (c *keilineCerts) trust() pki.Trust { return pki.TrustDir(c.dir) }

func (c *keilineCerts) server() (CertFiles, error) {
	return c.ensure(pki.Request{Name: ServerCertName, Kind: pki.Server, DNS: c.opts.ServerDNS, IPs: c.opts.ServerIPs})
}

func (c *keilineCerts) client(name string) (CertFiles, error) {
	return c.ensure(pki.Request{Name: name, Kind: pki.Client})
}

func (c *keilineCerts) ensure(req pki.Request) (CertFiles, error) {
	cur, ok := c.current[req.Name]
	if ok {
		switch {
		case cur.Revoked:
			return CertFiles{}, fmt.Errorf("broker: provision: the certificate of %s (serial %s) was revoked %s (%s); issue it a new one (pki.Issue in %s) or remove the part",
				req.Name, cur.Serial, cur.RevokedAt.Format(time.RFC3339), cur.Reason, c.dir)
		case cur.Kind != req.Kind:
			return CertFiles{}, fmt.Errorf("broker: provision: the certificate of %s (serial %s) is a %s certificate, want %s", req.Name, cur.Serial, cur.Kind, req.Kind)
		case time.Until(cur.NotAfter) > c.opts.RenewBefore && sameNames(&cur, &req):
			return CertFiles{Cert: cur.CertFile, Key: cur.KeyFile}, nil
		}
		req.Renew = true
	}
	n, err := pki.Issue(c.dir, req)
	if err != nil {
		return CertFiles{}, fmt.Errorf("broker: provision: %w", err)
	}
	return CertFiles{Cert: n.CertFile, Key: n.KeyFile}, nil
}

func sameNames(c *pki.Certificate, r *pki.Request) bool {
	if !slices.Equal(c.DNS, r.DNS) || len(c.IPs) != len(r.IPs) {
		return false
	}
	for i := range c.IPs {
		if !c.IPs[i].Equal(r.IPs[i]) {
			return false
		}
	}
	return true
}

// ensureNKey returns the public key of the user nkey seed in path, making
// the seed (mode 0600) when the file is missing.
func ensureNKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return "", fmt.Errorf("nkey: %w", err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return "", fmt.Errorf("nkey: %w", err)
		}
		data := append(append([]byte("-----BEGIN USER NKEY SEED-----\n"), seed...), "\n------END USER NKEY SEED------\n"...)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, pki.ModeKey)
		if err != nil {
			return "", fmt.Errorf("nkey seed: %w", err)
		}
		_, werr := f.Write(data)
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			_ = os.Remove(path)
			return "", fmt.Errorf("nkey seed %s: %w", path, err)
		}
		return kp.PublicKey()
	}
	if err != nil {
		return "", fmt.Errorf("nkey seed: %w", err)
	}
	if err := checkPrivate(path); err != nil {
		return "", err
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return "", fmt.Errorf("nkey seed %s: %w", path, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("nkey seed %s: not a user seed", path)
	}
	return pub, nil
}

// checkPrivate refuses a secret file others may read.
func checkPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable by others (mode %o); make it 0600", path, fi.Mode().Perm())
	}
	return nil
}
