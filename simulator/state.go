package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// StateFile is the name of the retentive state file in Config.Dir.
const StateFile = "plant.json"

// loadState reads the retentive state from cfg.Dir. It returns nil and no
// error when there is none.
func loadState(cfg Config) (*plantState, error) {
	if cfg.Dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("simulator: state dir: %w", err)
	}
	path := filepath.Join(cfg.Dir, StateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("simulator: read state: %w", err)
	}
	var st plantState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("simulator: state file %s: %w", path, err)
	}
	if st.Version < 1 || st.Version > stateVersion {
		return nil, fmt.Errorf("simulator: state file %s: version %d, want 1 to %d", path, st.Version, stateVersion)
	}
	st.Version = stateVersion // version 1 is version 2 without a manifest, version 2 is version 3 without JIS
	byID := make(map[string]*stationState, len(st.Stations))
	for _, s := range st.Stations {
		if s == nil {
			return nil, fmt.Errorf("simulator: state file %s: null station", path)
		}
		if _, ok := stationIndex[s.ID]; !ok {
			return nil, fmt.Errorf("simulator: state file %s: station %q is not on the line", path, s.ID)
		}
		if byID[s.ID] != nil {
			return nil, fmt.Errorf("simulator: state file %s: station %s twice", path, s.ID)
		}
		byID[s.ID] = s
	}
	// Line order; a station missing from the file starts empty.
	st.Stations = st.Stations[:0]
	for _, def := range line {
		s := byID[def.ID]
		if s == nil {
			s = &stationState{ID: def.ID, State: StateStarved}
		}
		if err := checkStation(s, st.Framed); err != nil {
			return nil, fmt.Errorf("simulator: state file %s: station %s: %w", path, s.ID, err)
		}
		st.Stations = append(st.Stations, s)
	}
	if st.Framed < 0 || st.Out < 0 || st.Out > st.Framed || st.Framed > CarsMax || st.TruthOffset < 0 {
		return nil, fmt.Errorf("simulator: state file %s: framed %d, out %d, truth offset %d out of range",
			path, st.Framed, st.Out, st.TruthOffset)
	}
	for index, mc := range st.ManifestCars {
		if index < 1 || index > st.Framed {
			return nil, fmt.Errorf("simulator: state file %s: manifest car %d (seq %d) was never framed", path, index, mc.Seq)
		}
	}
	if j := st.JIS; j != nil {
		if j.From < 0 || j.From > st.Framed+1 {
			return nil, fmt.Errorf("simulator: state file %s: JIS from car %d out of range (framed %d)", path, j.From, st.Framed)
		}
		for index := range j.Installed {
			if index < 1 || index > st.Framed {
				return nil, fmt.Errorf("simulator: state file %s: JIS parts installed in car %d, which was never framed", path, index)
			}
		}
		for sup, rack := range j.Racks {
			if jisSupplierByName(sup) == nil {
				return nil, fmt.Errorf("simulator: state file %s: JIS rack of unknown supplier %q", path, sup)
			}
			for _, d := range rack {
				if d.Supplier != sup || d.Seq > j.LastSeq[sup] {
					return nil, fmt.Errorf("simulator: state file %s: JIS rack %s holds %s seq %d (last seq %d)", path, sup, d.Supplier, d.Seq, j.LastSeq[sup])
				}
			}
		}
	}
	if m := st.Manifest; m != nil {
		if m.LastSeq < 0 {
			return nil, fmt.Errorf("simulator: state file %s: manifest last seq %d is negative", path, m.LastSeq)
		}
		for k, s := range m.Slots {
			if s.Seq < 0 {
				return nil, fmt.Errorf("simulator: state file %s: manifest slot %d: seq %d is negative", path, k+1, s.Seq)
			}
		}
	}
	return &st, nil
}

// checkStation checks what a loaded station refers to.
func checkStation(s *stationState, framed int) error {
	if s.Car != nil && (s.Car.Index < 1 || s.Car.Index > framed) {
		return fmt.Errorf("car %d was never framed", s.Car.Index)
	}
	// Cycles are ordered by (Resets, Counter): a counter reset
	// (ResetCounters) numbers the cycles after it from 1 again.
	prevR, prev := s.AckResets, s.LastAck
	for _, pr := range s.Pending {
		if pr.Car < 1 || pr.Car > framed {
			return fmt.Errorf("pending cycle %d: car %d was never framed", pr.Counter, pr.Car)
		}
		if pr.Resets < prevR || pr.Resets == prevR && pr.Counter <= prev || pr.Resets > s.Resets || pr.Resets == s.Resets && pr.Counter > s.CycleCounter {
			return fmt.Errorf("pending cycle %d (after %d counter resets) out of order (last ack %d, last cycle %d, %d resets)", pr.Counter, pr.Resets, s.LastAck, s.CycleCounter, s.Resets)
		}
		prevR, prev = pr.Resets, pr.Counter
	}
	return nil
}

// openTruth opens the truth file and cuts it to the saved offset: lines
// written after the last saved state are written again when their cars
// leave the line again.
func (e *engine) openTruth() error {
	if e.cfg.TruthPath == "" {
		return nil
	}
	f, err := os.OpenFile(e.cfg.TruthPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("simulator: truth file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("simulator: truth file: %w", err)
	}
	if fi.Size() < e.st.TruthOffset {
		e.log.Warn("truth file is shorter than the saved state says: lines are missing",
			"path", e.cfg.TruthPath, "size", fi.Size(), "saved_offset", e.st.TruthOffset)
		e.st.TruthOffset = fi.Size()
	}
	if fi.Size() > e.st.TruthOffset {
		if err := f.Truncate(e.st.TruthOffset); err != nil {
			f.Close()
			return fmt.Errorf("simulator: truth file: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("simulator: truth file: %w", err)
		}
	}
	e.truth = f
	return nil
}

// persist appends the queued truth lines (synced) and then saves the state
// with the truth file's new length.
func (e *engine) persist() error {
	if len(e.truthBuf) > 0 && e.truth != nil {
		var buf []byte
		for _, b := range e.truthBuf {
			buf = append(buf, b...)
		}
		if _, err := e.truth.Write(buf); err != nil {
			_ = e.truth.Truncate(e.st.TruthOffset)
			return fmt.Errorf("truth file: %w", err)
		}
		if err := e.truth.Sync(); err != nil {
			_ = e.truth.Truncate(e.st.TruthOffset)
			return fmt.Errorf("truth file: %w", err)
		}
		e.st.TruthOffset += int64(len(buf))
		e.truthBuf = e.truthBuf[:0]
	}
	if e.cfg.Dir != "" {
		b, err := json.Marshal(e.st)
		if err != nil {
			return fmt.Errorf("encode state: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(e.cfg.Dir, StateFile), b); err != nil {
			return err
		}
	}
	e.unsaved = false
	return nil
}

// writeFileAtomic replaces path with b: it writes a temporary file, syncs
// it, renames it over path and syncs the directory.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("save state: sync %s: %w", dir, err)
	}
	return nil
}

// TruthCar is one line of the truth file: what the plant built into a car.
type TruthCar struct {
	VIN      string         `json:"vin"`
	Model    string         `json:"model"`
	Variant  string         `json:"variant"`
	Colour   string         `json:"colour"`
	Seq      int64          `json:"seq,omitempty"` // manifest sequence number (Config.Manifest); 0 otherwise
	Stations []TruthStation `json:"stations"`
}

// TruthStation is what one station did to a car, exactly as its result
// block showed it.
type TruthStation struct {
	Station string  `json:"station"`
	Result  string  `json:"result"`
	Parts   []Part  `json:"parts"`
	Joints  []Joint `json:"joints"`
	Tests   []Test  `json:"tests"`
	// JIS are the JIS parts (Config.JIS): at an install station the part
	// delivered and installed, whether its variant is the one the car
	// needs; at R01 the replacement of a wrong one.
	JIS []TruthJIS `json:"jis,omitempty"`
	// Unreadable are the tags (Joint3.TorqueNm) the result block showed
	// with bad quality (Config.BadValueRate): the PLC had the values above,
	// the MES could not read them.
	Unreadable []string `json:"unreadable,omitempty"`
}

// truthLine is the truth file line of a car that left the line.
func truthLine(plan *carPlan) ([]byte, error) {
	b, err := json.Marshal(truthCar(plan))
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// truthCar is what the plant built into the car of plan.
func truthCar(plan *carPlan) TruthCar {
	tc := TruthCar{VIN: plan.VIN, Model: plan.Model, Variant: plan.Variant, Colour: plan.Colour, Seq: plan.Seq, Stations: []TruthStation{}}
	for _, i := range plan.visits() {
		r := plan.results[i]
		ts := TruthStation{Station: line[i].ID, Result: r.status(),
			Parts: append([]Part{}, r.Parts...), Joints: append([]Joint{}, r.Joints...), Tests: append([]Test{}, r.Tests...),
			JIS: append([]TruthJIS(nil), r.jis...)}
		for _, k := range r.unreadable {
			ts.Unreadable = append(ts.Unreadable, fmt.Sprintf("Joint%d.TorqueNm", k+1))
		}
		tc.Stations = append(tc.Stations, ts)
	}
	return tc
}
