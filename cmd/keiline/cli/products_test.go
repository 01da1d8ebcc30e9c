package cli

import (
	"strings"
	"testing"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/simulator"
)

// TestDefaultProductsMatchPlant: the MES makes the VINs the simulated plant
// would stamp on its own for the same model, variant and serial, and knows
// every model, variant and colour the plant builds.
func TestDefaultProductsMatchPlant(t *testing.T) {
	cfg := &line.Config{}
	defaultProducts(cfg, false)
	p := cfg.Products
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
	defaultProducts(cfg, true)
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
