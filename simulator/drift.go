package simulator

import (
	"fmt"
	"math"
	"slices"
)

// TorqueDrift plants a drift in the torque of one joint (issue 17: what a
// quality engineer's run rules must catch): from car FromCar on, the
// joint's torque at Station moves by Step sigma, plus PerCar sigma for each
// car from FromCar on (PerCar at FromCar, 2·PerCar at the car after, …).
// Sigma is the joint's process standard deviation, JointSigma of its
// nominal torque. The drifted torque is what the PLC shows and what the
// truth records; the tool's verdict is taken on it (a drift past the
// tolerance makes NOK joints). It applies to the joints the PLCs report,
// not to the tightening controllers' (Config.Torque).
type TorqueDrift struct {
	// Station and Joint name the joint ("C04", "lug_fl_1"). Required: a
	// station of the line with joints, and one of its joints.
	Station, Joint string
	// FromCar is the first car (framing index, from 1) that drifts.
	FromCar int
	// Step and PerCar are in sigma; either may be 0, not both.
	Step, PerCar float64
}

// JointSigma is the standard deviation of every joint's torque as a
// fraction of its nominal torque (before the tool's clamp to its window).
const JointSigma = 0.03

// Offset is the drift (in sigma) of car index: 0 before FromCar.
func (d *TorqueDrift) Offset(index int) float64 {
	if d == nil || index < d.FromCar {
		return 0
	}
	return d.Step + d.PerCar*float64(index-d.FromCar+1)
}

// validate names the first bad field.
func (d *TorqueDrift) validate(torque bool) error {
	if d == nil {
		return nil
	}
	switch {
	case !slices.ContainsFunc(line, func(s stationDef) bool { return s.ID == d.Station }):
		return fmt.Errorf("simulator: Drift.Station %q: not a station of the line", d.Station)
	case !slices.Contains(jointNames(d.Station), d.Joint):
		return fmt.Errorf("simulator: Drift.Joint %q: not a joint of station %s (%v)", d.Joint, d.Station, jointNames(d.Station))
	case d.FromCar < 1:
		return fmt.Errorf("simulator: Drift.FromCar %d: want a car index from 1", d.FromCar)
	case math.IsNaN(d.Step) || math.IsNaN(d.PerCar) || math.IsInf(d.Step, 0) || math.IsInf(d.PerCar, 0) || (d.Step == 0 && d.PerCar == 0):
		return fmt.Errorf("simulator: Drift: Step %v and PerCar %v: want finite sigmas, not both 0", d.Step, d.PerCar)
	case torque && slices.ContainsFunc(torqueDefs, func(t torqueDef) bool { return t.Station == d.Station }):
		return fmt.Errorf("simulator: Drift.Station %s: with Torque its joints are the controllers', which do not drift", d.Station)
	}
	return nil
}

// jointNames are the joints station id builds into a car, from the plan
// of car 1.
func jointNames(id string) []string {
	p := newPlanner(1, WMIDefault)
	c, err := p.plan(1)
	if err != nil {
		return nil
	}
	var out []string
	for i, st := range line {
		if st.ID == id {
			for _, j := range c.results[i].Joints {
				out = append(out, j.Name)
			}
		}
	}
	return out
}

// drift moves the torque of joint j of the car being built when the
// planner's drift names it.
func (g *gen) drift(j *Joint) {
	d := g.p.drift
	if d == nil || g.station != d.Station || j.Name != d.Joint {
		return
	}
	off := d.Offset(g.car.Index)
	if off == 0 {
		return
	}
	j.TorqueNm = round(j.TorqueNm+off*JointSigma*j.nominal, 2)
	j.OK = jointOK(j.TorqueNm, j.AngleDeg, j.nominal)
}
