package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keiline/keiline/line"
)

// The identities of one line's parts, as keiline up, keiline nats
// provision and the chaos campaign make them.

// PartsFile is the file, in a NATS security directory, that lists the
// parts the directory holds identities for.
const PartsFile = "parts.json"

// AgentPart, TrackerPart, OperatorPart, WebPart and SupplierPart name a line's
// identities; AdminPart, ReaderPart and DashboardPart the plant's.
func AgentPart(lc *line.Config, k int) string { return fmt.Sprintf("agent-%s-%d", lc.Line, k) }
func TrackerPart(lc *line.Config) string      { return "tracker-" + lc.Line }
func OperatorPart(lc *line.Config) string     { return "operator-" + lc.Line }
func WebPart(lc *line.Config) string          { return "web-" + lc.Line }
func SupplierPart(lc *line.Config, s string) string {
	return "supplier-" + lc.Line + "-" + s
}

const (
	AdminPart     = "admin"
	ReaderPart    = "reader"
	DashboardPart = "dashboard"
)

// LineParts are the identities of one line: agents (its stations dealt
// round robin to agents of them), its tracker, the dead-letter operator,
// the web server that publishes people's decisions,
// the JIS suppliers of the simulated plant, a dashboard, a reader and the
// admin that makes the streams.
func LineParts(lc *line.Config, agents int) Parts {
	agents = max(agents, 1)
	ps := Parts{}
	for k := range agents {
		p := Part{Name: AgentPart(lc, k), Role: RoleAgent, Plant: lc.Plant, Line: lc.Line}
		for i, st := range lc.Stations {
			if i%agents != k {
				continue
			}
			p.Stations = append(p.Stations, st.ID)
			if st.Manifest > 0 {
				p.Manifest = append(p.Manifest, st.ID)
			}
		}
		if len(p.Stations) > 0 {
			ps = append(ps, p)
		}
	}
	ps = append(ps,
		Part{Name: TrackerPart(lc), Role: RoleTracker, Plant: lc.Plant, Line: lc.Line},
		Part{Name: OperatorPart(lc), Role: RoleOperator, Plant: lc.Plant, Line: lc.Line},
		Part{Name: WebPart(lc), Role: RoleWeb, Plant: lc.Plant, Line: lc.Line},
		Part{Name: DashboardPart, Role: RoleDashboard},
		Part{Name: ReaderPart, Role: RoleReader},
		Part{Name: AdminPart, Role: RoleAdmin})
	if lc.Broadcast != nil {
		for _, s := range lc.Broadcast.Suppliers {
			ps = append(ps, Part{Name: SupplierPart(lc, s.Name), Role: RoleSupplier, Plant: lc.Plant, Line: lc.Line, Supplier: s.Name})
		}
	}
	return ps
}

// ProvisionLine makes (or reuses) the identities of parts in dir, and
// writes the list of parts there for `keiline nats --secure DIR`.
func ProvisionLine(dir string, parts Parts) (*Provisioned, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats security: %w", err)
	}
	b, err := json.MarshalIndent(parts, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, PartsFile), append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("nats security: %w", err)
	}
	prov, err := Provision(dir, parts, ProvisionOptions{})
	if err != nil {
		return nil, fmt.Errorf("nats security in %s: %w", dir, err)
	}
	return prov, nil
}

// LoadLine provisions the parts listed in dir (written by ProvisionLine,
// keiline nats provision).
func LoadLine(dir string) (*Provisioned, error) {
	parts, err := ReadLineParts(dir)
	if err != nil {
		return nil, err
	}
	return ProvisionLine(dir, parts)
}

// ReadLineParts reads the parts listed in dir.
func ReadLineParts(dir string) (Parts, error) {
	path := filepath.Join(dir, PartsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nats security: %w (make it with keiline nats provision)", err)
	}
	var parts Parts
	if err := json.Unmarshal(b, &parts); err != nil {
		return nil, fmt.Errorf("nats security: %s: %w", path, err)
	}
	return parts, nil
}

// CADir is the directory of keiline's CA in a security dir made by
// Provision without a plant CA (where pki.Revoke and pki.Issue work).
func CADir(dir string) string { return filepath.Join(dir, caDirName) }

// ForgetPart deletes the nkey seed and credentials file of part name in
// dir, so that the next Provision makes it a new nkey: after its
// certificate was revoked, the old seed must not let anyone in again.
func ForgetPart(dir, name string) error {
	for _, f := range []string{filepath.Join(dir, nkeysDirName, name+".nk"), CredsFile(dir, name)} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("nats security: forget %s: %w", name, err)
		}
	}
	return nil
}

// CredsFile is the credentials file of part name in a security dir made by
// ProvisionLine.
func CredsFile(dir, name string) string { return filepath.Join(dir, "creds", name+".json") }
