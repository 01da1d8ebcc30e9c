package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/keiline/keiline/internal/pki"
	"github.com/nats-io/nats.go"
)

// CredentialsMaxBytes bounds a credentials file.
const CredentialsMaxBytes = 64 << 10

// Credentials are what a part needs to connect: the files of its
// identity, never the secrets themselves (the nkey seed and the key stay
// in their 0600 files; a command line names only this file).
type Credentials struct {
	// Name is the part's name; it is also the connection's name.
	Name string `json:"name"`
	// NKeyFile is the user nkey seed (mode 0600). Required.
	NKeyFile string `json:"nkey_file"`
	// CertFile and KeyFile are the part's client certificate and key.
	// Required.
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	// CAFile is the CA bundle the server's certificate must lead to.
	// Required.
	CAFile string `json:"ca_file"`
	// CRLFile, when set, is checked for the server's certificate too.
	CRLFile string `json:"crl_file,omitempty"`
	// InboxPrefix is the only inbox the part may subscribe to. Required.
	InboxPrefix string `json:"inbox_prefix"`
}

// Validate checks c and names the first missing field.
func (c *Credentials) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"name", c.Name}, {"nkey_file", c.NKeyFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile},
		{"ca_file", c.CAFile}, {"inbox_prefix", c.InboxPrefix},
	} {
		if f.v == "" {
			return fmt.Errorf("credentials %q: %s is required", c.Name, f.name)
		}
	}
	if strings.ContainsAny(c.InboxPrefix, "*> \t\r\n") || strings.HasSuffix(c.InboxPrefix, ".") {
		return fmt.Errorf("credentials %q: inbox_prefix %q is not a subject prefix", c.Name, c.InboxPrefix)
	}
	return nil
}

// Write writes c as a credentials file (JSON, mode 0600).
func (c *Credentials) Write(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("credentials %s: %w", c.Name, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("credentials %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(append(b, '\n'))
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("credentials %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("credentials %s: %w", path, err)
	}
	return nil
}

// LoadCredentials reads a credentials file; relative paths in it are
// relative to the file's directory.
func LoadCredentials(path string) (*Credentials, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	if fi.Size() > CredentialsMaxBytes {
		return nil, fmt.Errorf("credentials %s: %d bytes, more than %d", path, fi.Size(), CredentialsMaxBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	c, err := ParseCredentials(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", path, err)
	}
	return c, nil
}

// ParseCredentials decodes a credentials file's content and resolves its
// relative paths against base. Unknown fields are an error (a typo would
// otherwise drop a file silently).
func ParseCredentials(b []byte, base string) (*Credentials, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Credentials
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode: more than one JSON object")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	for _, p := range []*string{&c.NKeyFile, &c.CertFile, &c.KeyFile, &c.CAFile, &c.CRLFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	return &c, nil
}

// Options returns the nats.Connect options of the part: its nkey (the
// seed is read from its file at each connect and never kept), TLS with
// its client certificate against the CA (and revocation list), its inbox
// prefix and its name. Options after these override them. It returns an
// error naming the file that cannot be used; a seed file others may read
// is refused.
func (c *Credentials) Options() ([]nats.Option, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := checkPrivate(c.NKeyFile); err != nil {
		return nil, fmt.Errorf("credentials %s: nkey seed: %w", c.Name, err)
	}
	nk, err := nats.NkeyOptionFromSeed(c.NKeyFile)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: nkey seed %s: %w", c.Name, c.NKeyFile, err)
	}
	v, err := pki.NewVerifier(pki.Trust{CAFile: c.CAFile, CRLFile: c.CRLFile})
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", c.Name, err)
	}
	tc, err := v.ClientTLS(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", c.Name, err)
	}
	return []nats.Option{nats.Name(c.Name), nk, nats.Secure(tc), nats.CustomInboxPrefix(c.InboxPrefix)}, nil
}

// Connect connects the part to url with its credentials and opts.
func (c *Credentials) Connect(url string, opts ...nats.Option) (*nats.Conn, error) {
	own, err := c.Options()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, append(own, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("nats %s as %s: %w", url, c.Name, err)
	}
	return nc, nil
}
