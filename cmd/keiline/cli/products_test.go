package cli

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/simulator"
)

// TestDefaultProductsMatchPlant: the MES makes the VINs the simulated plant
// would stamp on its own for the same model, variant and serial, and knows
// every model, variant and colour the plant builds.
func TestDefaultProductsMatchPlant(t *testing.T) {
	p := line.Default().Products
	n := 0
	err := simulator.History(1, "", 300, func(c simulator.TruthCar) error {
		n++
		v, err := p.VIN(c.Model, c.Variant, n)
		if err != nil {
			t.Fatalf("car %d (%s %s): %v", n, c.Model, c.Variant, err)
		}
		if v != c.VIN {
			t.Errorf("car %d (%s %s): MES VIN %s, plant VIN %s", n, c.Model, c.Variant, v, c.VIN)
		}
		found := false
		for _, col := range p.Colours {
			found = found || col == c.Colour
		}
		if !found {
			t.Errorf("car %d: colour %q unknown to the products", n, c.Colour)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLineConfigProductsProblems: a broken products, sequencing or
// broadcast section gets an error naming each field.
func TestLineConfigProductsProblems(t *testing.T) {
	cfg := &line.Config{Version: 1, Plant: "US1", Line: "L1", Stations: []line.Station{{ID: "W01", Endpoint: "opc.tcp://x:1"}}}
	for _, tag := range (&cfg.Stations[0]).Tags() {
		if cfg.Stations[0].Nodes == nil {
			cfg.Stations[0].Nodes = map[string]line.Tag{}
		}
		cfg.Stations[0].Nodes[tag] = line.NodeTag("ns=1;s=" + tag)
	}
	d := line.Default()
	cfg.Products, cfg.Sequencing, cfg.Broadcast = d.Products, d.Sequencing, d.Broadcast
	cfg.Products.WMI = "XY"
	cfg.Products.Models[0].Variants[0].Code = "I" // one character
	cfg.Products.Colours = append(cfg.Products.Colours, "white")
	cfg.Sequencing.Options = append(cfg.Sequencing.Options, line.Ratio{Name: "HOVER", P: 1, Q: 2}, line.Ratio{Name: "EV", P: 3, Q: 2})
	// sequencing.station W01 has no manifest slots
	cfg.Broadcast.Station = "T09"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("a broken planning config validated")
	}
	for _, want := range []string{"products.wmi", "products.models.0.variants.0.code", `"white" is used twice`, `"HOVER" is not one of the products' options`,
		`"EV" appears twice`, "station W01 has no manifest slots", `broadcast.station`, `"T03" is not a station`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// TestDefaultLineMatchesPlant: the MES's default line (line/default.yaml)
// and the simulated plant (its own model of the line, the ground truth)
// agree on every station: id, name, zone, slots, manifest slots and every
// node of its tag map.
func TestDefaultLineMatchesPlant(t *testing.T) {
	for _, jis := range []bool{false, true} {
		plant, err := simulator.New(simulator.Config{Dir: filepath.Join(t.TempDir(), "plant"), Seed: 1, Cars: 1, JIS: jis, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := plant.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		lc, err := defaultLine(plant, 100*time.Millisecond, false)
		if err != nil {
			t.Fatal(err)
		}
		sis := plant.Stations()
		if len(sis) != len(lc.Stations) {
			t.Fatalf("plant has %d stations, the default line %d", len(sis), len(lc.Stations))
		}
		for i, si := range sis {
			st := lc.Stations[i]
			if st.ID != si.ID || st.Name != si.Name || st.Zone != si.Zone || st.Optional != si.Optional ||
				st.Parts != si.Parts || st.Joints != si.Joints || st.Tests != si.Tests || st.Manifest != si.Manifest {
				t.Errorf("JIS %v: station %d: line %s %q %s opt=%v %d/%d/%d m%d, plant %s %q %s opt=%v %d/%d/%d m%d", jis, i,
					st.ID, st.Name, st.Zone, st.Optional, st.Parts, st.Joints, st.Tests, st.Manifest,
					si.ID, si.Name, si.Zone, si.Optional, si.Parts, si.Joints, si.Tests, si.Manifest)
				continue
			}
			for tag, node := range si.Nodes {
				if st.Node(tag) != node {
					t.Errorf("station %s tag %s: line node %q, plant node %q", st.ID, tag, st.Node(tag), node)
				}
			}
			for _, tag := range st.Tags() {
				if _, ok := si.Nodes[tag]; !ok && st.Nodes[tag].IsRead() {
					t.Errorf("station %s tag %s: the line reads node %q, which the plant does not have", st.ID, tag, st.Node(tag))
				}
			}
		}
		_ = plant.Stop()
	}
}
