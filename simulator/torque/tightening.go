package torque

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Tightening is one tightening the controller made: the ground truth a
// client's results are compared with. Torques are in hundredths of N·m
// (cN·m), as the protocol sends them; angles in degrees.
type Tightening struct {
	ID          uint32    `json:"tightening_id"`
	Controller  string    `json:"controller"`
	CellID      int       `json:"cell_id"`
	Channel     int       `json:"channel_id"`
	ToolSerial  string    `json:"tool_serial"`
	VIN         string    `json:"vin"`
	JobID       int       `json:"job_id"`
	Pset        int       `json:"pset"`
	PsetName    string    `json:"pset_name"`
	PsetChanged time.Time `json:"pset_changed"`
	Strategy    int       `json:"strategy"`

	BatchSize    int `json:"batch_size"`
	BatchCounter int `json:"batch_counter"`
	// BatchStatus: 0 batch not completed OK, 1 completed OK, 2 no batch.
	BatchStatus int `json:"batch_status"`

	OK bool `json:"ok"`
	// TorqueStatus and AngleStatus: 0 low, 1 OK, 2 high.
	TorqueStatus int `json:"torque_status"`
	AngleStatus  int `json:"angle_status"`
	// ErrorStatus is the tightening error bit set (bit 2 torque max shut
	// off, bit 14 torque less than target).
	ErrorStatus uint32 `json:"error_status"`

	TorqueMin    int `json:"torque_min_cnm"`
	TorqueMax    int `json:"torque_max_cnm"`
	TorqueTarget int `json:"torque_target_cnm"`
	Torque       int `json:"torque_cnm"`
	AngleMin     int `json:"angle_min_deg"`
	AngleMax     int `json:"angle_max_deg"`
	AngleTarget  int `json:"angle_target_deg"`
	Angle        int `json:"angle_deg"`

	// Time is the controller's clock at the tightening, to the second.
	Time time.Time `json:"time"`
}

// Error bits of Tightening.ErrorStatus.
const (
	errTorqueMaxShutOff     = 1 << 2
	errTorqueLessThanTarget = 1 << 14
)

// makeTightening draws the values of tightening id from the seed: the
// same seed and id give the same values, whatever happened before.
func makeTightening(seed uint64, nokRate float64, id uint32, p Pset) (torque, torqueStatus, angle int) {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	lo, hi := centi(p.TorqueMin), centi(p.TorqueMax)
	angle = p.AngleMin + rng.IntN(p.AngleMax-p.AngleMin+1)
	if rng.Float64() >= nokRate {
		return lo + rng.IntN(hi-lo+1), 1, angle
	}
	if rng.IntN(2) == 0 && lo > 1 {
		// Low: between half the minimum and just under it.
		return lo/2 + rng.IntN(lo-lo/2), 0, angle
	}
	// High: just over the maximum, up to a fifth more.
	top := min(hi+hi/5+1, centiMax)
	if top <= hi {
		return lo/2 + rng.IntN(max(lo-lo/2, 1)), 0, angle
	}
	return hi + 1 + rng.IntN(top-hi), 2, angle
}

// WriteTruth writes tightenings as JSON lines, one a line.
func WriteTruth(w io.Writer, ts []Tightening) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, t := range ts {
		if err := enc.Encode(t); err != nil {
			return fmt.Errorf("torque: write tightening %d: %w", t.ID, err)
		}
	}
	return bw.Flush()
}

// ReadTruth reads tightenings written by WriteTruth. A line that does not
// parse is an error naming its line number.
func ReadTruth(r io.Reader) ([]Tightening, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var out []Tightening
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var t Tightening
		if err := json.Unmarshal(sc.Bytes(), &t); err != nil {
			return out, fmt.Errorf("torque: truth line %d: %w", line, err)
		}
		out = append(out, t)
	}
	return out, sc.Err()
}
