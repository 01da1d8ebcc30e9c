package simulator

import (
	"math"
	"testing"
)

// TestTorqueDrift: a planted drift moves only its joint's torque, only
// from its car on, by the sigmas it says; everything else the plant
// builds at the stations of the route is what it builds without one.
func TestTorqueDrift(t *testing.T) {
	d := &TorqueDrift{Station: "C04", Joint: "lug_fl_1", FromCar: 5, Step: 2, PerCar: 0.5}
	if err := d.validate(false); err != nil {
		t.Fatal(err)
	}
	plain, drifted := newPlanner(7, WMIDefault), newPlanner(7, WMIDefault)
	drifted.drift = d
	moved := 0
	for i := 1; i <= 12; i++ {
		a, err := plain.plan(i)
		if err != nil {
			t.Fatal(err)
		}
		b, err := drifted.plan(i)
		if err != nil {
			t.Fatal(err)
		}
		for s := range a.results {
			if line[s].Optional {
				continue // the rework bay redoes what the drift made NOK
			}
			for k, ja := range a.results[s].Joints {
				jb := b.results[s].Joints[k]
				want := ja.TorqueNm
				if line[s].ID == d.Station && ja.Name == d.Joint && i >= d.FromCar {
					want = round(ja.TorqueNm+(2+0.5*float64(i-4))*JointSigma*ja.nominal, 2)
					moved++
				}
				if math.Abs(jb.TorqueNm-want) > 1e-9 || jb.AngleDeg != ja.AngleDeg || jb.Name != ja.Name {
					t.Fatalf("car %d %s %s: torque %v, want %v (undrifted %v)", i, line[s].ID, ja.Name, jb.TorqueNm, want, ja.TorqueNm)
				}
			}
		}
	}
	if moved != 8 {
		t.Fatalf("%d joints drifted, want 8 (cars 5..12)", moved)
	}
}

func TestTorqueDriftValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		d      TorqueDrift
		torque bool
	}{
		{"unknown station", TorqueDrift{Station: "X9", Joint: "lug_fl_1", FromCar: 1, Step: 2}, false},
		{"unknown joint", TorqueDrift{Station: "C04", Joint: "lug_zz_9", FromCar: 1, Step: 2}, false},
		{"no car", TorqueDrift{Station: "C04", Joint: "lug_fl_1", Step: 2}, false},
		{"no drift", TorqueDrift{Station: "C04", Joint: "lug_fl_1", FromCar: 1}, false},
		{"controller joint", TorqueDrift{Station: "C04", Joint: "lug_fl_1", FromCar: 1, Step: 2}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := (Config{Drift: &tc.d, Torque: tc.torque}).Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
