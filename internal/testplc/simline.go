package testplc

import (
	"fmt"
	"testing"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/simulator"
)

// SimLine is the default line (line.Default) on the simulated plant p:
// every station's endpoint is p's (the default's placeholder before p
// starts), W01's manifest slots as many as p has, its tightening controllers p's
// (none when p has none). Without the planning
// half when only is given: then it has only those stations.
func SimLine(t testing.TB, p *simulator.Plant, only ...string) *line.Config {
	t.Helper()
	lc := line.Default()
	for _, s := range p.Stations() {
		st, ok := lc.Station(s.ID)
		if !ok {
			t.Fatalf("the default line has no station %s of the plant", s.ID)
		}
		if s.Endpoint != "" {
			st.Endpoint = s.Endpoint
		}
		for k := s.Manifest + 1; k <= st.Manifest; k++ {
			for _, tag := range line.ManifestTags {
				delete(st.Nodes, fmt.Sprintf("Manifest%d.%s", k, tag))
			}
		}
		st.Manifest = s.Manifest
	}
	// p's tightening controllers, or none: then its PLCs report the joints.
	addrs := map[string]string{}
	for _, c := range p.Controllers() {
		addrs[c.ID] = c.Address
	}
	if len(addrs) == 0 {
		lc.RemoveControllers()
	} else if err := lc.SetControllerAddresses(addrs); err != nil {
		t.Fatal(err)
	}
	if len(only) > 0 {
		var sts []line.Station
		for _, id := range only {
			st, ok := lc.Station(id)
			if !ok {
				t.Fatalf("the default line has no station %s", id)
			}
			sts = append(sts, *st)
		}
		lc.Stations, lc.Products, lc.Sequencing, lc.Broadcast = sts, nil, nil, nil
	}
	lc.SetDir(t.TempDir())
	if err := lc.Validate(); err != nil {
		t.Fatal(err)
	}
	return lc
}
