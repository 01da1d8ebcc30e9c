package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/keiline/keiline/internal/vin"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring naming the field; "" = valid
	}{
		{name: "zero is defaults", cfg: Config{}},
		{name: "full", cfg: Config{Plant: "JP2", Line: "L-3", Speed: 600, Cars: 10, BasePort: 4840, MaxUnacked: 5, WMI: "JK9"}},
		{name: "negative speed", cfg: Config{Speed: -1}, wantErr: "Speed"},
		{name: "NaN speed", cfg: Config{Speed: math.NaN()}, wantErr: "Speed"},
		{name: "huge speed", cfg: Config{Speed: SpeedMax * 2}, wantErr: "Speed"},
		{name: "negative cars", cfg: Config{Cars: -1}, wantErr: "Cars"},
		{name: "too many cars", cfg: Config{Cars: CarsMax + 1}, wantErr: "Cars"},
		{name: "base port too high", cfg: Config{BasePort: 65530}, wantErr: "BasePort"},
		{name: "negative base port", cfg: Config{BasePort: -5}, wantErr: "BasePort"},
		{name: "negative max unacked", cfg: Config{MaxUnacked: -1}, wantErr: "MaxUnacked"},
		{name: "WMI with O", cfg: Config{WMI: "7KO"}, wantErr: "WMI"},
		{name: "WMI lower case", cfg: Config{WMI: "7kl"}, wantErr: "WMI"},
		{name: "WMI too long", cfg: Config{WMI: "7KLX"}, wantErr: "WMI"},
		{name: "plant with dot", cfg: Config{Plant: "US.1"}, wantErr: "Plant"},
		{name: "line with wildcard", cfg: Config{Line: "L>"}, wantErr: "Line"},
		{name: "host with slash", cfg: Config{Host: "opc.tcp://x"}, wantErr: "Host"},
		{name: "manifest", cfg: Config{Manifest: true, ManifestSlots: ManifestSlotsMax}},
		{name: "too many manifest slots", cfg: Config{Manifest: true, ManifestSlots: ManifestSlotsMax + 1}, wantErr: "ManifestSlots"},
		{name: "negative manifest slots", cfg: Config{ManifestSlots: -1}, wantErr: "ManifestSlots"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := New(tt.cfg); err != nil {
					t.Fatalf("New() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
			if _, err := New(tt.cfg); err == nil {
				t.Fatalf("New() accepted an invalid config")
			}
		})
	}
}

// TestDeterministic checks that a car's build depends only on the seed and
// the car: the same seed gives the same truth whatever else was built
// before, another seed gives another.
func TestDeterministic(t *testing.T) {
	const n = 300
	a := newPlanner(42, WMIDefault)
	var lines [][]byte
	for k := 1; k <= n; k++ {
		c, err := a.plan(k)
		if err != nil {
			t.Fatal(err)
		}
		b, err := truthLine(c)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, b)
	}
	// A fresh planner building the cars in another order (as after a restart
	// that resumes mid-run) gives the same lines.
	b := newPlanner(42, WMIDefault)
	for k := n; k >= 1; k -= 7 {
		c, err := b.plan(k)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := truthLine(c)
		if !bytes.Equal(got, lines[k-1]) {
			t.Fatalf("car %d differs when built out of order:\n%s\n%s", k, got, lines[k-1])
		}
	}
	other := newPlanner(43, WMIDefault)
	same := 0
	for k := 1; k <= 20; k++ {
		c, _ := other.plan(k)
		got, _ := truthLine(c)
		if bytes.Equal(got, lines[k-1]) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("seed 43 built %d of 20 cars exactly like seed 42", same)
	}
}

// TestBuild checks what the stations build over many cars: shares of models
// and NOKs, conditional parts, slot counts, rounding, lots and rework.
func TestBuild(t *testing.T) {
	const n = 4000
	p := newPlanner(1, WMIDefault)
	models := map[string]int{}
	var joints, nokJoints, tests, nokTests, reworked int
	lotRuns := map[string][]int{} // part number -> run lengths of its lots
	lastLot := map[string]string{}
	for k := 1; k <= n; k++ {
		c, err := p.plan(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := vin.Validate(c.VIN); err != nil {
			t.Fatal(err)
		}
		if c.VIN[10] != PlantCode || c.VIN[9] != 'V' || !strings.HasSuffix(c.VIN, pad6(k)) {
			t.Fatalf("car %d: VIN %s", k, c.VIN)
		}
		models[c.Model]++
		nok := false
		for i, def := range line {
			r := c.results[i]
			if len(r.Parts) > def.Parts || len(r.Joints) > def.Joints || len(r.Tests) > def.Tests {
				t.Fatalf("car %d station %s: %d/%d/%d parts/joints/tests, slots %d/%d/%d", k, def.ID,
					len(r.Parts), len(r.Joints), len(r.Tests), def.Parts, def.Joints, def.Tests)
			}
			if def.Optional {
				continue
			}
			for _, j := range r.Joints {
				joints++
				if j.TorqueNm != round(j.TorqueNm, 2) || j.AngleDeg != round(j.AngleDeg, 1) {
					t.Fatalf("car %d %s: torque %v angle %v not rounded", k, j.Name, j.TorqueNm, j.AngleDeg)
				}
				ok := math.Abs(j.TorqueNm-j.nominal) <= j.nominal*jointTolerance && j.AngleDeg >= jointAngleLow && j.AngleDeg <= jointAngleHigh
				if ok != j.OK {
					t.Fatalf("car %d %s: torque %v (nominal %v) angle %v OK %v", k, j.Name, j.TorqueNm, j.nominal, j.AngleDeg, j.OK)
				}
				if !j.OK {
					nokJoints++
					nok = true
				}
			}
			for _, tt := range r.Tests {
				tests++
				if (tt.Value >= tt.Low && tt.Value <= tt.High) != tt.OK {
					t.Fatalf("car %d %s: %v in [%v, %v] OK %v", k, tt.Name, tt.Value, tt.Low, tt.High, tt.OK)
				}
				if !tt.OK {
					nokTests++
					nok = true
				}
			}
			for _, part := range r.Parts {
				if part.PartNumber == "" || part.Lot == "" || part.Supplier == "" {
					t.Fatalf("car %d station %s: part %+v", k, def.ID, part)
				}
				runs := lotRuns[part.PartNumber]
				if lastLot[part.PartNumber] != part.Lot {
					runs = append(runs, 0)
					lastLot[part.PartNumber] = part.Lot
				}
				runs[len(runs)-1]++
				lotRuns[part.PartNumber] = runs
			}
		}
		if nok != c.nok {
			t.Fatalf("car %d: nok %v, plan says %v", k, nok, c.nok)
		}
		// Conditional parts.
		c01 := c.results[stationIndex["C01"]].Parts
		switch {
		case c.Model == "KE":
			if len(c01) != 1 || !strings.HasPrefix(c01[0].PartNumber, "BAT-") || c01[0].Serial != "BAT-KE-"+pad6(k) {
				t.Fatalf("car %d KE at C01: %+v", k, c01)
			}
		case c.Variant == "Turbo":
			if len(c01) != 2 || c01[0].PartNumber != "ENG-660-TB" || c01[1].PartNumber != "ICL-660-TB" {
				t.Fatalf("car %d turbo at C01: %+v", k, c01)
			}
		default:
			if len(c01) != 1 || c01[0].PartNumber != "ENG-660-NA" {
				t.Fatalf("car %d %s %s at C01: %+v", k, c.Model, c.Variant, c01)
			}
		}
		c02 := c.results[stationIndex["C02"]].Parts
		if hasRDU := len(c02) == 3 && c02[2].PartNumber == "RDU-4WD"; hasRDU != (c.Variant == "4WD") {
			t.Fatalf("car %d %s %s at C02: %+v", k, c.Model, c.Variant, c02)
		}
		if w := c.results[0].Parts; len(w) != 1 || w[0].Serial != "BIW-"+c.Model+"-"+pad6(k) {
			t.Fatalf("car %d W01 parts %+v", k, w)
		}
		// Rework redoes exactly the NOKs, all OK.
		rw := c.results[stationIndex[reworkStation]]
		var wantJ, wantT []string
		for _, r := range c.results {
			for _, j := range r.Joints {
				if !j.OK {
					wantJ = append(wantJ, j.Name)
				}
			}
			for _, tt := range r.Tests {
				if !tt.OK {
					wantT = append(wantT, tt.Name)
				}
			}
		}
		var gotJ, gotT []string
		for _, j := range rw.Joints {
			if !j.OK || j.Tool != reworkTool {
				t.Fatalf("car %d rework joint %+v", k, j)
			}
			gotJ = append(gotJ, j.Name)
		}
		for _, tt := range rw.Tests {
			if !tt.OK {
				t.Fatalf("car %d rework test %+v", k, tt)
			}
			gotT = append(gotT, tt.Name)
		}
		if strings.Join(gotJ, ",") != strings.Join(wantJ, ",") || strings.Join(gotT, ",") != strings.Join(wantT, ",") {
			t.Fatalf("car %d rework %v %v, NOKs %v %v", k, gotJ, gotT, wantJ, wantT)
		}
		if rw.status() != "OK" || len(rw.Parts) != 0 {
			t.Fatalf("car %d rework status %s parts %v", k, rw.status(), rw.Parts)
		}
		if c.nok {
			reworked++
		}
		// Visits: mandatory stations, plus R01 for NOK cars.
		want := len(line) - 1
		if c.nok {
			want++
		}
		if got := len(c.visits()); got != want {
			t.Fatalf("car %d visits %d stations, want %d", k, got, want)
		}
	}
	share := func(m string) float64 { return float64(models[m]) / n }
	for m, want := range map[string]float64{"KV": 0.30, "KW": 0.35, "KT": 0.15, "KE": 0.20} {
		if math.Abs(share(m)-want) > 0.03 {
			t.Errorf("model %s share %.3f, want about %.2f", m, share(m), want)
		}
	}
	if r := float64(nokJoints) / float64(joints); r < 0.7*jointNOKRate || r > 1.3*jointNOKRate {
		t.Errorf("NOK joint rate %.4f, want about %.4f", r, jointNOKRate)
	}
	if r := float64(nokTests) / float64(tests); r < 0.6*testNOKRate || r > 1.4*testNOKRate {
		t.Errorf("NOK test rate %.4f, want about %.4f", r, testNOKRate)
	}
	if reworked == 0 {
		t.Errorf("no car went to rework")
	}
	for pn, runs := range lotRuns {
		if len(runs) < 3 {
			continue // rare part: runs are of cars that have it, not all cars
		}
		for _, r := range runs[1 : len(runs)-1] { // the first and last runs are cut
			if r > 200 {
				t.Errorf("part %s: a lot fed %d cars, want at most 200 (runs %v)", pn, r, runs)
				break
			}
		}
		if pn == "PNT-CLEAR-2K" || pn == "FLD-BRAKE-DOT4" { // on every car: runs are whole lots
			for _, r := range runs[1 : len(runs)-1] {
				if r < 50 {
					t.Errorf("part %s: a lot fed %d cars, want at least 50", pn, r)
				}
			}
		}
	}
}

func TestTruthLineShape(t *testing.T) {
	c, err := newPlanner(9, WMIDefault).plan(1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := truthLine(c)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("null")) || !bytes.HasSuffix(b, []byte("}\n")) || bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("truth line: %s", b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"vin", "model", "variant", "colour", "stations"} {
		if _, ok := m[k]; !ok {
			t.Errorf("truth line has no %q", k)
		}
	}
	if _, ok := m["seq"]; ok {
		t.Errorf("truth line of a car not from the manifest has a seq")
	}
	st := m["stations"].([]any)[stationIndex["C04"]].(map[string]any)
	j := st["joints"].([]any)[0].(map[string]any)
	for _, k := range []string{"joint", "tool", "torque_nm", "angle_deg", "ok"} {
		if _, ok := j[k]; !ok {
			t.Errorf("truth joint has no %q: %v", k, j)
		}
	}
	if st["station"] != "C04" || j["tool"] != "C04-NR1" || j["joint"] != "lug_fl_1" {
		t.Errorf("C04 entry %v", st)
	}
}

func pad6(k int) string {
	return fmt.Sprintf("%06d", k)
}

// TestLotsAreUnique: no lot name is shared by two part numbers, so a lot
// question names one part's cars only.
func TestLotsAreUnique(t *testing.T) {
	owner := map[string]string{}
	err := History(1, "", 3000, func(c TruthCar) error {
		for _, st := range c.Stations {
			for _, p := range st.Parts {
				if p.Lot == "" {
					continue
				}
				if o, ok := owner[p.Lot]; ok && o != p.PartNumber {
					t.Fatalf("lot %s is of %s and of %s", p.Lot, o, p.PartNumber)
				}
				owner[p.Lot] = p.PartNumber
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
