package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Reason is why a certificate was revoked: the CRLReason code of RFC 5280
// §5.3.1.
type Reason int

// The reasons Revoke takes (RFC 5280 §5.3.1; certificateHold and
// removeFromCRL are left out: a keiline revocation is final).
const (
	Unspecified          Reason = 0
	KeyCompromise        Reason = 1
	CACompromise         Reason = 2
	AffiliationChanged   Reason = 3
	Superseded           Reason = 4
	CessationOfOperation Reason = 5
	PrivilegeWithdrawn   Reason = 9
)

var reasonNames = map[Reason]string{
	Unspecified: "unspecified", KeyCompromise: "keyCompromise", CACompromise: "cACompromise",
	AffiliationChanged: "affiliationChanged", Superseded: "superseded",
	CessationOfOperation: "cessationOfOperation", PrivilegeWithdrawn: "privilegeWithdrawn",
}

// String returns the reason's RFC 5280 name.
func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// ParseReason reads a reason by its RFC 5280 name, in any case
// ("keyCompromise", "superseded", ...).
func ParseReason(s string) (Reason, error) {
	var names []string
	for r, n := range reasonNames {
		if strings.EqualFold(n, s) {
			return r, nil
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return 0, fmt.Errorf("revocation reason %q: want one of %s", s, strings.Join(names, ", "))
}

// Revoke revokes a certificate of the CA in dir, named by its name (the
// newest certificate of that name) or its serial number, and signs a new
// revocation list with it. It returns the revoked certificate; an error
// wrapping ErrNotFound when neither a name nor a serial matches. Revoking
// a revoked certificate again keeps its first date and reason.
func Revoke(dir, nameOrSerial string, reason Reason) (*Certificate, error) {
	if _, ok := reasonNames[reason]; !ok {
		return nil, fmt.Errorf("pki: revoke %s: reason %d is not one Revoke takes", nameOrSerial, int(reason))
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
	c, err := findIssued(dir, nameOrSerial)
	if err != nil {
		return nil, err
	}
	list, err := ca.loadCRL(dir)
	if err != nil {
		return nil, err
	}
	d := describe(c)
	for _, e := range list.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(c.SerialNumber) == 0 {
			d.Revoked, d.RevokedAt, d.Reason = true, e.RevocationTime, Reason(e.ReasonCode)
			return d, nil
		}
	}
	now := time.Now()
	entries := append(slices.Clip(list.RevokedCertificateEntries), x509.RevocationListEntry{
		SerialNumber: c.SerialNumber, RevocationTime: now.UTC().Truncate(time.Second), ReasonCode: int(reason),
	})
	if err := writeCRL(dir, ca, entries, new(big.Int).Add(list.Number, big.NewInt(1)), now); err != nil {
		return nil, err
	}
	d.Revoked, d.RevokedAt, d.Reason = true, now.UTC().Truncate(time.Second), reason
	return d, nil
}

// Refresh signs the revocation list of the CA in dir anew, with the same
// revocations and a NextUpdate CRLValidity from now.
func Refresh(dir string) error {
	unlock, err := lockDir(dir)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer unlock()
	ca, err := loadCA(dir)
	if err != nil {
		return err
	}
	list, err := ca.loadCRL(dir)
	if err != nil {
		return err
	}
	return writeCRL(dir, ca, list.RevokedCertificateEntries, new(big.Int).Add(list.Number, big.NewInt(1)), time.Now())
}

// findIssued finds the newest certificate of a name, or else the register's
// certificate of a serial.
func findIssued(dir, nameOrSerial string) (*x509.Certificate, error) {
	if ValidName(nameOrSerial) == nil {
		if c, err := LoadCertificate(filepath.Join(dir, certsDir, nameOrSerial+".crt")); err == nil {
			return c, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("pki: %w", err)
		}
	}
	if s, err := ParseSerial(nameOrSerial); err == nil {
		path := filepath.Join(dir, issuedDir, serialText(s)+".crt")
		c, err := LoadCertificate(path)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("pki: %w", err)
		}
	}
	return nil, fmt.Errorf("pki: no certificate named or with serial %q in %s: %w", nameOrSerial, dir, ErrNotFound)
}

// writeCRL signs and writes the CA's revocation list.
func writeCRL(dir string, ca *ca, entries []x509.RevocationListEntry, number *big.Int, now time.Time) error {
	tmpl := &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                now.Add(-clockSkew),
		NextUpdate:                now.Add(CRLValidity),
		RevokedCertificateEntries: entries,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		return fmt.Errorf("pki: revocation list: %w", err)
	}
	path := filepath.Join(dir, CRLFile)
	if err := writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), ModeCert); err != nil {
		return fmt.Errorf("pki: revocation list: %w", err)
	}
	return nil
}

// loadCRL reads the CA's revocation list and checks the CA signed it.
func (ca *ca) loadCRL(dir string) (*x509.RevocationList, error) {
	path := filepath.Join(dir, CRLFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: revocation list: %w", err)
	}
	lists, err := ParseRevocationLists(b)
	if err != nil {
		return nil, fmt.Errorf("pki: revocation list %s: %w", path, err)
	}
	if len(lists) != 1 {
		return nil, fmt.Errorf("pki: revocation list %s: %d lists, want the CA's one", path, len(lists))
	}
	if err := lists[0].CheckSignatureFrom(ca.cert); err != nil {
		return nil, fmt.Errorf("pki: revocation list %s is not signed by the CA %s: %w", path, ca.cert.Subject, err)
	}
	return lists[0], nil
}

// revoked returns the CA's revocations by serial.
func (ca *ca) revoked(dir string) (map[string]x509.RevocationListEntry, error) {
	list, err := ca.loadCRL(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]x509.RevocationListEntry, len(list.RevokedCertificateEntries))
	for _, e := range list.RevokedCertificateEntries {
		out[serialText(e.SerialNumber)] = e
	}
	return out, nil
}
