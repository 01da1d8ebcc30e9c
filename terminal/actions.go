package terminal

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/web"
)

// TextMax is the longest free text a form field takes, in characters.
const TextMax = 500

// form is one submitted form: its values, who submits it, when, and the
// problems found, by field.
type form struct {
	values url.Values
	who    event.Human
	at     time.Time
	errs   []fieldError
	car    *schema.CarAtStation
}

// fieldError is a problem with one field, as the page shows it.
type fieldError struct {
	Field, Msg string
}

func (f *form) bad(field, msg string) { f.errs = append(f.errs, fieldError{field, msg}) }

// text returns field, trimmed; a required field that is empty, or one
// longer than TextMax or not UTF-8, is a problem.
func (f *form) text(field string, required bool) string {
	v := strings.TrimSpace(f.values.Get(field))
	switch {
	case !utf8.ValidString(v) || strings.ContainsRune(v, 0):
		f.bad(field, "not readable text")
	case utf8.RuneCountInString(v) > TextMax:
		f.bad(field, "longer than 500 characters")
	case required && v == "":
		f.bad(field, "required")
	}
	return v
}

// choice returns field, which must be one of allowed.
func (f *form) choice(field string, allowed []string) string {
	v := strings.TrimSpace(f.values.Get(field))
	if !slices.Contains(allowed, v) {
		if v == "" {
			f.bad(field, "required: choose one")
		} else {
			f.bad(field, "not one of the choices offered")
		}
	}
	return v
}

// carOf loads the car the form names (field vin) from the record: a car
// the record does not know is a problem with the field.
func (t *Terminal) carOf(r *http.Request, f *form) (*schema.CarAtStation, error) {
	vin := strings.ToUpper(f.text("vin", true))
	if vin == "" {
		return nil, nil
	}
	car, err := t.cfg.Record.CarAt(r.Context(), vin)
	if errors.Is(err, schema.ErrNotFound) {
		f.bad("vin", "no car "+vin+" in the record")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f.car = car
	return car, nil
}

// openHold returns the car's open hold of one of kinds opened by event
// id, or false.
func openHold(car *schema.CarAtStation, id string, kinds ...string) (schema.HoldRecord, bool) {
	for _, h := range car.Holds {
		if h.EventID == id && slices.Contains(kinds, h.Kind) {
			return h, true
		}
	}
	return schema.HoldRecord{}, false
}

// decision makes the event of h at st about vin, submitted by f's user.
func (t *Terminal) decision(st *line.Station, vin string, f *form, h event.Human) (*event.Event, error) {
	h.UserID, h.User, h.Role = f.who.UserID, f.who.User, f.who.Role
	return event.NewHuman(t.lc.Plant, t.lc.Line, st.ID, vin, h, f.at)
}

// defect: code, zone and severity from the catalogue, optional text.
func (t *Terminal) defect(r *http.Request, st *line.Station, f *form) ([]*event.Event, error) {
	p := &t.lc.People
	car, err := t.carOf(r, f)
	if err != nil {
		return nil, err
	}
	codes := make([]string, len(p.Defects))
	for i, d := range p.Defects {
		codes[i] = d.Code
	}
	zones := make([]string, len(p.Zones))
	for i, z := range p.Zones {
		zones[i] = z.Code
	}
	h := event.Human{Action: event.ActionDefect, Code: f.choice("code", codes), Zone: f.choice("zone", zones),
		Severity: f.choice("severity", event.Severities), Text: f.text("text", false)}
	if car == nil || len(f.errs) > 0 {
		return nil, nil
	}
	ev, err := t.decision(st, car.VIN, f, h)
	return []*event.Event{ev}, err
}

// repair: at a rework station, the open defect repaired and what was done,
// with the part replaced if any.
func (t *Terminal) repair(r *http.Request, st *line.Station, f *form) ([]*event.Event, error) {
	if !st.Optional && st.Zone != "rework" {
		return nil, &web.Error{Status: http.StatusBadRequest, Msg: "station " + st.ID + " is not a rework station: repairs are recorded at rework"}
	}
	car, err := t.carOf(r, f)
	if err != nil {
		return nil, err
	}
	h := event.Human{Action: event.ActionRepair, Cites: f.text("defect", true), Text: f.text("text", true)}
	if pn := f.text("part_number", false); pn != "" {
		h.Parts = []event.Part{{PartNumber: pn, Serial: f.text("serial", false), Lot: f.text("lot", false)}}
	}
	if car == nil {
		return nil, nil
	}
	if _, ok := openHold(car, h.Cites, schema.HoldDefect); h.Cites != "" && !ok {
		f.bad("defect", "no open defect "+h.Cites+" on car "+car.VIN)
	}
	if len(f.errs) > 0 {
		return nil, nil
	}
	ev, err := t.decision(st, car.VIN, f, h)
	return []*event.Event{ev}, err
}

// release: the inspector's signature (password re-entered) on the line's
// release meaning, with an optional reason; the car must have a quality
// hold to release.
func (t *Terminal) release(r *http.Request, st *line.Station, f *form) ([]*event.Event, error) {
	car, err := t.carOf(r, f)
	if err != nil {
		return nil, err
	}
	reason := f.text("reason", false)
	password := f.values.Get("password")
	if password == "" {
		f.bad("password", "required: re-enter your password to sign")
	}
	if car != nil && !slices.ContainsFunc(car.Holds, func(h schema.HoldRecord) bool { return slices.Contains(schema.QualityHoldKinds, h.Kind) }) {
		f.bad("vin", "car "+car.VIN+" has no quality hold to release")
	}
	if car == nil || len(f.errs) > 0 {
		return nil, nil
	}
	meaning := t.lc.People.Meaning()
	sig, err := t.cfg.Signer.Sign(r, password, meaning)
	if errors.Is(err, web.ErrSignatureRefused) {
		f.bad("password", "signature refused: wrong password, or too many wrong passwords for now")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f.at = sig.At
	ev, err := t.decision(st, car.VIN, f, event.Human{Action: event.ActionRelease, Meaning: sig.Meaning, Reason: reason})
	return []*event.Event{ev}, err
}

// andon: pull or clear, with a reason.
func (t *Terminal) andon(r *http.Request, st *line.Station, f *form) ([]*event.Event, error) {
	op := f.choice("op", []string{"pull", "clear"})
	reason := f.text("reason", true)
	if len(f.errs) > 0 {
		return nil, nil
	}
	a := event.ActionAndonPull
	if op == "clear" {
		a = event.ActionAndonClear
	}
	ev, err := t.decision(st, "", f, event.Human{Action: a, Reason: reason})
	return []*event.Event{ev}, err
}

// classify: a leaf of the reason tree for the station's stop (the state
// event cited, optional), with an optional note.
func (t *Terminal) classify(r *http.Request, st *line.Station, f *form) ([]*event.Event, error) {
	leaves := t.lc.People.Leaves()
	codes := make([]string, len(leaves))
	for i, l := range leaves {
		codes[i] = l.Code
	}
	h := event.Human{Action: event.ActionClassify, Code: f.choice("code", codes), Reason: f.text("reason", false), Cites: f.text("stop", false)}
	if prefix := t.lc.Plant + "." + t.lc.Line + "." + st.ID + "." + event.KindState + "."; h.Cites != "" && !strings.HasPrefix(h.Cites, prefix) {
		f.bad("stop", "not a state event of station "+st.ID)
	}
	if len(f.errs) > 0 {
		return nil, nil
	}
	ev, err := t.decision(st, "", f, h)
	return []*event.Event{ev}, err
}

// WindowLayout is how the hold form's window times are written (an HTML
// datetime-local input), in the server's local time.
const WindowLayout = "2006-01-02T15:04"

// hold: a manual hold with a reason on one car (vin), on every car that
// got a part lot (lot), or on every car a station made in a time window
// (output_station, from, to): one decision per car.
func (t *Terminal) hold(r *http.Request, st *line.Station, f *form) ([]*event.Event, error) {
	reason := f.text("reason", true)
	lot := f.text("lot", false)
	out := f.text("output_station", false)
	given := 0
	for _, v := range []string{strings.TrimSpace(f.values.Get("vin")), lot, out} {
		if v != "" {
			given++
		}
	}
	var vins []string
	var what string
	var err error
	switch {
	case given > 1:
		f.bad("vin", "give one of a VIN, a lot or a station's output, not several")
	case lot != "":
		vins, err = t.carsOfLot(r, f, lot)
	case out != "":
		vins, what, err = t.carsOfWindow(r, f, out)
	default:
		car, err := t.carOf(r, f)
		if err != nil {
			return nil, err
		}
		if car != nil {
			vins = []string{car.VIN}
		}
	}
	if err != nil || len(f.errs) > 0 {
		return nil, err
	}
	var evs []*event.Event
	for i, vin := range vins {
		h := event.Human{Action: event.ActionHold, Reason: reason, Lot: lot, Text: what, Counter: uint64(f.at.UnixNano()) + uint64(i)}
		ev, err := t.decision(st, vin, f, h)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// carsOfLot returns the cars that got lot.
func (t *Terminal) carsOfLot(r *http.Request, f *form, lot string) ([]string, error) {
	ans, err := t.cfg.Record.ByLot(r.Context(), schema.LotQuery{Lots: []string{lot}})
	if err != nil {
		return nil, err
	}
	if ans.Truncated {
		f.bad("lot", "lot "+lot+" is in more cars than one hold takes: hold them by narrower lots")
	}
	var vins []string
	for _, c := range ans.Cars {
		vins = append(vins, c.VIN)
	}
	if len(vins) == 0 {
		f.bad("lot", "no car in the record got lot "+lot)
	}
	return vins, nil
}

// carsOfWindow returns the cars station made in the form's window [from,
// to), and the window in words.
func (t *Terminal) carsOfWindow(r *http.Request, f *form, station string) ([]string, string, error) {
	if _, ok := t.lc.Station(station); !ok {
		f.bad("output_station", "no station "+station+" on line "+t.lc.Line)
	}
	window := func(field string) time.Time {
		v := strings.TrimSpace(f.values.Get(field))
		at, err := time.ParseInLocation(WindowLayout, v, time.Local)
		if err != nil {
			f.bad(field, "want a time as YYYY-MM-DDTHH:MM")
		}
		return at
	}
	from, to := window("from"), window("to")
	if len(f.errs) > 0 {
		return nil, "", nil
	}
	if !to.After(from) {
		f.bad("to", "must be after from")
		return nil, "", nil
	}
	ans, err := t.cfg.Record.ByStation(r.Context(), schema.StationQuery{Station: station, From: from, To: to})
	if err != nil {
		return nil, "", err
	}
	if ans.Truncated {
		f.bad("from", "the window holds more cars than one hold takes: narrow it")
	}
	var vins []string
	for _, c := range ans.Cars {
		vins = append(vins, c.VIN)
	}
	if len(vins) == 0 {
		f.bad("output_station", "station "+station+" made no car in that window")
	}
	return vins, "output of " + station + " from " + from.Format(time.RFC3339) + " to " + to.Format(time.RFC3339), nil
}

// unhold: the manual hold released (its hold event) and why.
func (t *Terminal) unhold(r *http.Request, st *line.Station, f *form) ([]*event.Event, error) {
	car, err := t.carOf(r, f)
	if err != nil {
		return nil, err
	}
	h := event.Human{Action: event.ActionUnhold, Cites: f.text("hold", true), Reason: f.text("reason", true)}
	if car == nil {
		return nil, nil
	}
	if _, ok := openHold(car, h.Cites, schema.HoldManual); h.Cites != "" && !ok {
		f.bad("hold", "no open manual hold "+h.Cites+" on car "+car.VIN)
	}
	if len(f.errs) > 0 {
		return nil, nil
	}
	ev, err := t.decision(st, car.VIN, f, h)
	return []*event.Event{ev}, err
}

// correct: a correction of an earlier decision at this station, in words;
// it is filed under the corrected decision's car.
func (t *Terminal) correct(r *http.Request, st *line.Station, f *form) ([]*event.Event, error) {
	h := event.Human{Action: event.ActionCorrect, Cites: f.text("decision", true), Text: f.text("text", true)}
	if len(f.errs) > 0 {
		return nil, nil
	}
	old, err := t.cfg.Record.HumanAction(r.Context(), h.Cites)
	if errors.Is(err, schema.ErrNotFound) || (err == nil && old.Station != st.ID) {
		f.bad("decision", "no decision "+h.Cites+" at station "+st.ID)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ev, err := t.decision(st, old.VIN, f, h)
	return []*event.Event{ev}, err
}
