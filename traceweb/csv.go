package traceweb

import (
	"github.com/keiline/keiline/internal/csvsafe"
	"io"
	"strconv"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// The CSV forms of the trace answers, shared by the HTTP API (?format=csv)
// and keiline trace --csv: one header row, times in UTC RFC 3339, results
// OK or NOK, and for list answers where each car is now.

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// num is a value for a CSV cell; an unknown value is "unknown".
func num(v *float64) string {
	if v == nil {
		return "unknown"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

// okText is a verdict for a CSV cell: OK, NOK or unknown.
func okText(ok *bool) string { return event.Verdict(ok) }

// BirthCSVHeader is the header of a birth record in CSV: one row per
// record line (visit, part, joint, test, bad_value, defect, hold, gate).
var BirthCSVHeader = []string{"vin", "record", "station", "event_id", "at", "result", "name", "serial", "lot", "supplier", "tool", "value", "unit", "low", "high", "detail"}

// WriteBirthCSV writes b as CSV.
func WriteBirthCSV(out io.Writer, b schema.BirthRecord) error {
	w := csvsafe.NewWriter(out)
	row := func(rec, station, event string, at time.Time, result, name, serial, lot, supplier, tool, value, unit, low, high, detail string) {
		_ = w.Write([]string{b.VIN, rec, station, event, rfc(at), result, name, serial, lot, supplier, tool, value, unit, low, high, detail})
	}
	_ = w.Write(BirthCSVHeader)
	for _, x := range b.Visits {
		detail := ""
		if x.Rework {
			detail = "rework"
		}
		row("visit", x.Station, x.EventID, x.FinishedAt, x.Result, "", "", "", "", "", "", "", "", "", detail)
		for _, p := range x.Parts {
			row("part", x.Station, x.EventID, x.FinishedAt, "", p.PartNumber, p.Serial, p.Lot, p.Supplier, "", "", "", "", "", "")
		}
		for _, j := range x.Joints {
			row("joint", x.Station, x.EventID, x.FinishedAt, okText(j.OK), j.Joint, "", "", "", j.Tool, num(j.TorqueNm), "Nm", "", "", "angle "+num(j.AngleDeg)+"°")
		}
		for _, e := range x.Tests {
			row("test", x.Station, x.EventID, x.FinishedAt, okText(e.OK), e.Name, "", "", "", "", num(e.Value), e.Unit, num(e.Low), num(e.High), "")
		}
		for _, bv := range x.Bad {
			row("bad_value", x.Station, x.EventID, x.FinishedAt, "", bv.Tag, "", "", "", "", "", "", "", "", bv.NodeID+": "+bv.Reason)
		}
	}
	for _, d := range b.Defects {
		detail := d.Detail
		if d.ReworkEventID != "" {
			detail += "; reworked at " + d.ReworkStation + " by " + d.ReworkEventID + ": " + d.ReworkDetail
		}
		row("defect", d.Station, d.EventID, d.At, d.Kind, d.Name, "", "", "", "", "", "", "", "", detail)
	}
	for _, h := range b.Holds {
		state, detail := "open", h.Reason
		if h.ClosedAt != nil {
			state = "closed"
			detail += "; closed " + rfc(*h.ClosedAt) + " by " + h.ClosedEventID
		}
		row("hold", h.Station, h.OpenedEventID, h.OpenedAt, state, h.Kind, "", "", "", "", "", "", "", "", detail)
	}
	for _, g := range b.Gate {
		verdict := "released"
		if !g.Released {
			verdict = "blocked"
		}
		row("gate", g.Station, g.EventID, g.DecidedAt, verdict, "", "", "", "", "", strconv.Itoa(g.OpenHolds), "open holds", "", "", g.Reason)
	}
	for _, d := range b.Decisions {
		detail := d.User + " (" + d.Role + "): " + d.Why()
		if d.Meaning != "" {
			detail += "; signed: " + d.Meaning
		}
		row("decision", d.Station, d.EventID, d.At, d.Action, d.Code, "", d.Lot, "", "", "", "", "", "", detail)
	}
	w.Flush()
	return w.Error()
}

func whereOf(cars []schema.CarStatus) map[string]schema.CarStatus {
	m := make(map[string]schema.CarStatus, len(cars))
	for _, c := range cars {
		m[c.VIN] = c
	}
	return m
}

// WritePartsCSV writes a part or lot answer as CSV: one row per part
// installed, with where its car is now.
func WritePartsCSV(out io.Writer, a *schema.PartAnswer) error {
	w := csvsafe.NewWriter(out)
	where := whereOf(a.Cars)
	_ = w.Write([]string{"vin", "station", "part_number", "serial", "lot", "supplier", "installed_at", "event_id", "where", "last_station", "open_holds"})
	for _, u := range a.Uses {
		c := where[u.VIN]
		_ = w.Write([]string{u.VIN, u.Station, u.PartNumber, u.Serial, u.Lot, u.Supplier, rfc(u.InstalledAt), u.EventID, c.Where, c.LastStation, strconv.Itoa(c.OpenHolds)})
	}
	w.Flush()
	return w.Error()
}

// WriteWindowCSV writes a tool or station answer as CSV: one row per
// joint, test or visit, with where its car is now.
func WriteWindowCSV(out io.Writer, a *schema.WindowAnswer) error {
	w := csvsafe.NewWriter(out)
	where := whereOf(a.Cars)
	tail := func(vin string) []string {
		c := where[vin]
		return []string{c.Where, c.LastStation, strconv.Itoa(c.OpenHolds)}
	}
	switch {
	case a.Tightenings != nil:
		_ = w.Write([]string{"vin", "station", "joint", "class", "controller", "channel", "tightening_id", "tool_serial", "pset", "batch_counter",
			"batch_size", "torque_nm", "torque_min_nm", "torque_max_nm", "angle_deg", "angle_min_deg", "angle_max_deg", "result",
			"made_while_disabled", "made_at", "event_id", "where", "last_station", "open_holds"})
		for _, t := range a.Tightenings {
			_ = w.Write(append([]string{t.VIN, t.Station, t.Joint, t.Class, t.Controller, strconv.Itoa(t.Channel), strconv.FormatUint(uint64(t.TighteningID), 10),
				t.ToolSerial, strconv.Itoa(t.Pset), strconv.Itoa(t.BatchCounter), strconv.Itoa(t.BatchSize), num(t.TorqueNm), num(t.TorqueMinNm),
				num(t.TorqueMaxNm), num(t.AngleDeg), num(t.AngleMinDeg), num(t.AngleMaxDeg), t.Result, strconv.FormatBool(t.WhileDisabled),
				rfc(t.MadeAt), t.EventID}, tail(t.VIN)...))
		}
	case a.Joints != nil:
		_ = w.Write([]string{"vin", "station", "joint", "tool", "torque_nm", "angle_deg", "result", "made_at", "event_id", "where", "last_station", "open_holds"})
		for _, j := range a.Joints {
			_ = w.Write(append([]string{j.VIN, j.Station, j.Joint, j.Tool, num(j.TorqueNm), num(j.AngleDeg), okText(j.OK), rfc(j.MadeAt), j.EventID}, tail(j.VIN)...))
		}
	case a.Tests != nil:
		_ = w.Write([]string{"vin", "station", "test", "value", "unit", "low", "high", "result", "tested_at", "event_id", "where", "last_station", "open_holds"})
		for _, x := range a.Tests {
			_ = w.Write(append([]string{x.VIN, x.Station, x.Name, num(x.Value), x.Unit, num(x.Low), num(x.High), okText(x.OK), rfc(x.TestedAt), x.EventID}, tail(x.VIN)...))
		}
	default:
		_ = w.Write([]string{"vin", "station", "result", "finished_at", "event_id", "where", "last_station", "open_holds"})
		for _, v := range a.Visits {
			_ = w.Write(append([]string{v.VIN, v.Station, v.Result, rfc(v.FinishedAt), v.EventID}, tail(v.VIN)...))
		}
	}
	w.Flush()
	return w.Error()
}
