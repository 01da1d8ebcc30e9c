package simulator

import "fmt"

// History calls fn with what a plant of the given seed and WMI (default
// WMIDefault) builds into cars 1 to n, in framing order, each as its truth
// file line shows it, without running any PLC. Generators of synthetic
// history use it so that their cars carry the default line's parts, lots,
// joints, tests and NOK rates. It stops at fn's first error and returns it.
func History(seed int64, wmi string, n int, fn func(TruthCar) error) error {
	if wmi == "" {
		wmi = WMIDefault
	}
	if n < 0 || n > CarsMax {
		return fmt.Errorf("simulator: history of %d cars: want 0 to %d", n, CarsMax)
	}
	p := newPlanner(seed, wmi)
	for i := 1; i <= n; i++ {
		c, err := p.plan(i)
		if err != nil {
			return err
		}
		if err := fn(truthCar(c)); err != nil {
			return err
		}
	}
	return nil
}

// LineStations describes the default line's stations in line order, as
// Plant.Stations does but without endpoints or nodes: what a generator of
// synthetic history needs to route its cars.
func LineStations() []StationInfo {
	out := make([]StationInfo, len(line))
	for i, s := range line {
		out[i] = StationInfo{ID: s.ID, Name: s.Name, Zone: s.Zone, Parts: s.Parts, Joints: s.Joints, Tests: s.Tests, Optional: s.Optional}
	}
	return out
}
