package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/keiline/keiline/internal/pki"
	"github.com/keiline/keiline/pipeline/broker"
)

const pkiUsage = `keiline pki — the plant's small certificate authority

  keiline pki init                       make the CA (a P-256 key, 0600, and a self-signed certificate)
  keiline pki issue NAME --kind server|client [--dns H,...] [--ip A,...] [--validity 8760h] [--renew]
  keiline pki list [--json]              every certificate issued, newest of each name with its files
  keiline pki revoke NAME|SERIAL [--reason R]   revoke one and sign a new revocation list
  keiline pki refresh                    sign the revocation list anew (it is current for a year)

The CA is --ca DIR, by default the one keiline up and keiline nats provision
use (<state>/nats-sec/ca). Keys never leave DIR; give a part its
certificate and key file from DIR/certs. A server that checks revocation
(the NATS servers keiline runs) refuses a revoked client at its next check.
`

// runPKI is `keiline pki`: the plant CA of internal/pki on the command line.
func runPKI(_ context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" {
		fmt.Fprint(out, pkiUsage)
		if len(args) == 0 {
			return errors.New("pki: give a command: init, issue, list, revoke, refresh")
		}
		return nil
	}
	cmd := args[0]
	fs := newFlags("pki " + cmd)
	state := fs.String("state", StateDirDefault, "the `up` state dir whose CA to use")
	caDir := fs.String("ca", "", "the CA directory (default <state>/nats-sec/ca)")
	kind := fs.String("kind", "", "issue: server or client")
	dns := fs.String("dns", "", "issue: the server's host names, comma separated")
	ips := fs.String("ip", "", "issue: the server's IP addresses, comma separated")
	validity := fs.Duration("validity", pki.ValidityDefault, "issue: how long the certificate is valid")
	renew := fs.Bool("renew", false, "issue: replace a valid certificate of the name")
	reason := fs.String("reason", "unspecified", "revoke: why (an RFC 5280 reason: keyCompromise, superseded, cessationOfOperation, ...)")
	asJSON := fs.Bool("json", false, "list: JSON for machines")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	dir := *caDir
	if dir == "" {
		dir = broker.CADir(filepath.Join(*state, "nats-sec"))
	}
	one := func() (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("pki %s: give one NAME", cmd)
		}
		return pos[0], nil
	}
	switch cmd {
	case "init":
		if err := pki.Init(dir); err != nil {
			return fmt.Errorf("pki init %s: %w", dir, err)
		}
		fmt.Fprintf(out, "pki: CA made in %s (certificate %s)\n", dir, filepath.Join(dir, pki.CACertFile))
		return nil
	case "issue":
		name, err := one()
		if err != nil {
			return err
		}
		req := pki.Request{Name: name, Kind: pki.Kind(*kind), DNS: splitList(*dns), Validity: *validity, Renew: *renew}
		for _, s := range splitList(*ips) {
			ip := net.ParseIP(s)
			if ip == nil {
				return fmt.Errorf("pki issue %s: --ip %q is not an IP address", name, s)
			}
			req.IPs = append(req.IPs, ip)
		}
		c, err := pki.Issue(dir, req)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "pki: issued %s %s, serial %s, valid until %s\n  certificate %s\n  key         %s\n",
			c.Kind, c.Name, c.Serial, c.NotAfter.UTC().Format(time.RFC3339), c.CertFile, c.KeyFile)
		return nil
	case "list":
		cs, err := pki.List(dir)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(out, pkiRows(cs))
		}
		printCerts(out, cs)
		return nil
	case "revoke":
		name, err := one()
		if err != nil {
			return err
		}
		r, err := pki.ParseReason(*reason)
		if err != nil {
			return err
		}
		c, err := pki.Revoke(dir, name, r)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "pki: revoked %s (serial %s) on %s: %s; the revocation list %s is signed anew\n",
			c.Name, c.Serial, c.RevokedAt.UTC().Format(time.RFC3339), c.Reason, filepath.Join(dir, pki.CRLFile))
		return nil
	case "refresh":
		if err := pki.Refresh(dir); err != nil {
			return err
		}
		fmt.Fprintf(out, "pki: revocation list %s signed anew\n", filepath.Join(dir, pki.CRLFile))
		return nil
	}
	fmt.Fprint(os.Stderr, pkiUsage)
	return fmt.Errorf("pki: unknown command %q", cmd)
}

// pkiRow is one certificate as `pki list --json` prints it.
type pkiRow struct {
	Serial    string    `json:"serial"`
	Name      string    `json:"name"`
	Kind      pki.Kind  `json:"kind"`
	DNS       []string  `json:"dns,omitempty"`
	IPs       []string  `json:"ips,omitempty"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Revoked   bool      `json:"revoked"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Reason    string    `json:"reason,omitempty"`
	CertFile  string    `json:"cert_file,omitempty"`
}

func pkiRows(cs []pki.Certificate) []pkiRow {
	out := []pkiRow{}
	for _, c := range cs {
		r := pkiRow{Serial: c.Serial, Name: c.Name, Kind: c.Kind, DNS: c.DNS, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
			Revoked: c.Revoked, RevokedAt: c.RevokedAt, CertFile: c.CertFile}
		for _, ip := range c.IPs {
			r.IPs = append(r.IPs, ip.String())
		}
		if c.Revoked {
			r.Reason = c.Reason.String()
		}
		out = append(out, r)
	}
	return out
}

// printCerts prints the register as a table.
func printCerts(out io.Writer, cs []pki.Certificate) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tKIND\tSERIAL\tVALID UNTIL\tSTATUS")
	for _, c := range cs {
		status := "valid"
		switch {
		case c.Revoked:
			status = "revoked " + c.RevokedAt.UTC().Format(time.DateOnly) + " (" + c.Reason.String() + ")"
		case time.Now().After(c.NotAfter):
			status = "expired"
		case c.CertFile == "":
			status = "valid, superseded"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.Name, c.Kind, c.Serial, c.NotAfter.UTC().Format(time.DateOnly), status)
	}
	_ = w.Flush()
}
