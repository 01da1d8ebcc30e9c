package stations

import (
	"strings"
	"testing"

	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/line"
)

// TestDesiredTool: what the interlock wants of a tool for each car the PLC
// may show.
func TestDesiredTool(t *testing.T) {
	lc := line.Default()
	c04, _ := lc.Station("C04")
	c := &controllerAgent{lc: lc, ct: &c04.Controllers[0]}
	kt, _ := lc.Products.VIN("KT", "4WD", 12)
	kw, _ := lc.Products.VIN("KW", "NA", 13)
	alien, _ := vin.Make("7KL", "KX1NA", 2027, 'U', 14)
	tests := []struct {
		name          string
		car           carView
		done          string
		enabled       bool
		pset          int
		why, wrongCar string
	}{
		{name: "PLC not read", car: carView{}, why: "not read yet"},
		{name: "unreadable VinPresent", car: carView{seen: true, vin: kt}, why: "VinPresent unreadable"},
		{name: "no car", car: carView{seen: true, known: true}, why: "no car"},
		{name: "a truck", car: carView{seen: true, known: true, vin: kt}, enabled: true, pset: 2},
		{name: "a wagon", car: carView{seen: true, known: true, vin: kw}, enabled: true, pset: 1},
		{name: "the wagon's batch complete", car: carView{seen: true, known: true, vin: kw}, done: kw, pset: 1, why: "batch is complete"},
		{name: "a model the line does not build", car: carView{seen: true, known: true, vin: alien}, why: "the wrong car", wrongCar: "model code KX"},
		{name: "not a VIN", car: carView{seen: true, known: true, vin: "BODY-0042"}, why: "the wrong car", wrongCar: "invalid VIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.car, c.batchDone = tt.car, tt.done
			got := c.desired()
			if got.enabled != tt.enabled || got.pset != tt.pset || !strings.Contains(got.why, tt.why) ||
				(tt.wrongCar == "") != (got.wrong == "") || !strings.Contains(got.wrong, tt.wrongCar) {
				t.Errorf("desired = %+v, want enabled %v pset %d why %q wrong %q", got, tt.enabled, tt.pset, tt.why, tt.wrongCar)
			}
		})
	}
}

// TestMadeWhileDisabled: the disabled windows by tightening id.
func TestMadeWhileDisabled(t *testing.T) {
	c := &controllerAgent{}
	c.disabledFrom(10) // disabled after 10
	c.disabledFrom(12) // still disabled: the window stays open from 10
	if c.madeWhileDisabled(10) || !c.madeWhileDisabled(11) || !c.madeWhileDisabled(500) {
		t.Fatal("open window")
	}
	c.enabledAfter(12) // 11 and 12 were made while disabled
	if !c.madeWhileDisabled(12) || c.madeWhileDisabled(13) {
		t.Fatal("closed window")
	}
	c.disabledFrom(20)
	c.enabledAfter(20) // nothing made in between
	if c.madeWhileDisabled(21) || len(c.windows) != 1 {
		t.Fatalf("empty window kept: %+v", c.windows)
	}
	c.last = 15
	c.pruneWindowsLocked()
	if len(c.windows) != 0 {
		t.Fatalf("window below the last durable id kept: %+v", c.windows)
	}
}
