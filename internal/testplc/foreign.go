package testplc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ForeignNS is the foreign PLC's S7 namespace index.
const ForeignNS = 3

// Foreign is foreign.js running as a child process: a PLC that looks like
// a Siemens S7-1500 (FOREIGN.md).
type Foreign struct {
	*PLC
	TruthPath string
}

// ForeignTruth is one line of the foreign PLC's --truth file: a result in
// engineering units, as a record of it should hold.
type ForeignTruth struct {
	Station      string         `json:"station"`
	Counter      int32          `json:"counter"`
	Car          int            `json:"car"`
	Identity     string         `json:"identity"` // vin, body or both
	BodyNo       int32          `json:"body_no"`  // 0 at a vin station
	VIN          string         `json:"vin"`      // "" at a body station
	ModelCode    int16          `json:"model_code"`
	Model        string         `json:"model"`
	Verdict      int16          `json:"verdict"` // 1 OK, 2 NOK
	OK           bool           `json:"ok"`
	Nuts         []ForeignNut   `json:"nuts"`
	ToolID       string         `json:"tool_id"`
	NutLot       string         `json:"nut_lot"`
	ClampForceKN float64        `json:"clamp_force_kn"`
	Bad          []ForeignBad   `json:"bad"`
	BadIdentity  map[string]any `json:"bad_identity"` // what the PLC showed instead, if injected
	MadeAt       time.Time      `json:"made_at"`
}

// ForeignNut is one nut of a result.
type ForeignNut struct {
	Nut      int     `json:"nut"`
	TorqueNm float64 `json:"torque_nm"`
	AngleDeg float64 `json:"angle_deg"`
	OK       bool    `json:"ok"`
}

// ForeignBad is a node injected with a bad status for a result.
type ForeignBad struct {
	Node   string `json:"node"` // ns=3;s="DB201"."Nut"[2]."Nm"
	Status string `json:"status"`
}

// StartForeign starts foreign.js with args on a free port, with a PKI
// directory and a truth file in t.TempDir(), waits until it listens and
// stops it at the end of the test.
func StartForeign(t testing.TB, args ...string) *Foreign {
	t.Helper()
	truth := filepath.Join(t.TempDir(), "truth.jsonl")
	p := Start(t, "foreign.js", nil, append([]string{"--truth", truth}, args...)...)
	return &Foreign{PLC: p, TruthPath: truth}
}

// Truth returns the truth lines written so far.
func (p *Foreign) Truth(t testing.TB) []ForeignTruth {
	t.Helper()
	b, err := os.ReadFile(p.TruthPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []ForeignTruth
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var tr ForeignTruth
		if err := json.Unmarshal(sc.Bytes(), &tr); err != nil {
			t.Fatalf("truth line %q: %v", sc.Text(), err)
		}
		out = append(out, tr)
	}
	return out
}

// TruthOf returns the truth of station's result counter; the PLC writes it
// before the result can be shown.
func (p *Foreign) TruthOf(t testing.TB, station string, counter int32) ForeignTruth {
	t.Helper()
	for _, tr := range p.Truth(t) {
		if tr.Station == station && tr.Counter == counter {
			return tr
		}
	}
	t.Fatalf("no truth line for station %s counter %d", station, counter)
	return ForeignTruth{}
}
