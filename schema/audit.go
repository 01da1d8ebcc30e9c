package schema

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keiline/keiline/pipeline/event"
)

// ChainProblem is the first place where the event log's hash chain breaks.
type ChainProblem struct {
	Seq     int64
	EventID string
	What    string
}

func (p *ChainProblem) Error() string {
	return fmt.Sprintf("event log row seq %d (event %s): %s", p.Seq, p.EventID, p.What)
}

// VerifyChain walks the event log in order and checks every row's hash and
// link. It returns the number of rows checked and the first problem found
// (nil when the chain is whole): a row whose content changed, a row
// missing (deleted), a row whose link does not match (inserted or reordered
// out of band), or a chain head that does not match the last row. Runs of
// rows that retention removed (chain_gaps) are stepped over.
func (s *Store) VerifyChain(ctx context.Context) (int64, *ChainProblem, error) {
	var n int64
	var first *ChainProblem
	err := readOnly(ctx, s, func(tx pgx.Tx) error {
		var err error
		n, err = walkChain(ctx, tx, nil, func(p Problem) bool {
			first = &ChainProblem{Seq: p.Seq, EventID: p.EventID, What: p.What}
			return false
		})
		return err
	})
	return n, first, err
}

// Audit checks.
const (
	CheckChain    = "chain"    // the hash chain of the event log
	CheckIndex    = "index"    // event_ids against the event log
	CheckEnvelope = "envelope" // the event log's columns against the hashed payload
	CheckDerived  = "derived"  // traceability rows against the payloads they come from
	CheckHolds    = "holds"    // holds against the events that opened and closed them
	CheckGate     = "gate"     // quality gate decisions against the holds open then
	CheckIdentity = "identity" // cycles filed by body number against the pairs that filed them
	CheckAnchor   = "anchor"   // chain heads kept outside the database
)

// Problem is one thing an audit found wrong, naming the event log row,
// event, car and table concerned where it knows them.
type Problem struct {
	Check   string `json:"check"`
	Seq     int64  `json:"seq,omitempty"`
	EventID string `json:"event_id,omitempty"`
	VIN     string `json:"vin,omitempty"`
	Table   string `json:"table,omitempty"`
	What    string `json:"what"`
}

func (p Problem) String() string {
	s := p.Check + ":"
	if p.Seq != 0 {
		s += fmt.Sprintf(" seq %d", p.Seq)
	}
	if p.EventID != "" {
		s += " event " + p.EventID
	}
	if p.VIN != "" {
		s += " vin " + p.VIN
	}
	if p.Table != "" {
		s += " " + p.Table
	}
	return s + ": " + p.What
}

// Anchor is a chain head an auditor kept outside the database (printed by
// keiline audit verify): the row at Seq must still carry Hash.
type Anchor struct {
	Seq  int64
	Hash []byte
}

// ParseAnchor reads an anchor written as SEQ:HEXHASH.
func ParseAnchor(s string) (Anchor, error) {
	var a Anchor
	var h string
	if _, err := fmt.Sscanf(s, "%d:%s", &a.Seq, &h); err != nil || a.Seq < 1 {
		return a, fmt.Errorf("anchor %q: want SEQ:HEXHASH as audit verify prints it", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return a, fmt.Errorf("anchor %q: the hash must be 64 hex digits", s)
	}
	a.Hash = b
	return a, nil
}

// AuditOptions tunes Audit.
type AuditOptions struct {
	// MaxProblems stops each check after this many problems. Defaults to
	// AuditMaxProblemsDefault.
	MaxProblems int
	// Anchors are chain heads kept outside the database.
	Anchors []Anchor
}

// AuditMaxProblemsDefault is how many problems each check reports at most.
const AuditMaxProblemsDefault = 50

// AuditReport is what Audit found.
type AuditReport struct {
	// Rows is the number of event log rows walked.
	Rows int64 `json:"rows"`
	// Head is the chain head: keep it outside the database as an anchor.
	Head ChainRef `json:"head"`
	// Problems is every problem found, by check; empty when the record is
	// intact.
	Problems []Problem `json:"problems"`
	// Truncated is true when some check stopped at MaxProblems.
	Truncated bool `json:"truncated,omitempty"`
	// Conflicts are the conflicts the tracker kept (event.KindConflict,
	// at most MaxProblems, oldest first): no alteration of the record,
	// but events a station sent under an id the record already held with
	// other content, which an auditor must look into.
	Conflicts []ConflictRef `json:"conflicts"`
}

// ConflictRef is one conflict in the event log.
type ConflictRef struct {
	Seq     int64     `json:"seq"`
	ID      string    `json:"id"`
	EventID string    `json:"event_id"`
	Station string    `json:"station"`
	At      time.Time `json:"at"`
	Text    string    `json:"text"`
}

// Audit proves the record unaltered, in one read-only snapshot: it walks
// the hash chain (rows changed, deleted or inserted out of band; the chain
// head; the anchors), checks that event_ids indexes exactly the log and
// that each row's columns match its hashed payload, and re-derives from the
// payloads every visit, part, joint, test, bad value, tightening, station
// state, alarm and body number pair the tracker wrote, filing each cycle under the car
// the rules filed it under (pipeline/rules), and compares them both ways,
// and that the lot index covers every part installed. It checks each hold
// against the events that opened and closed it (a NOK hold closed by a
// later OK cycle of the car, a route hold by the late cycle of the station
// it skipped, an unknown hold by a later cycle that reports its item with a
// known value, a tightening hold by an OK tightening of its joint or the
// rework), that every NOK cycle, NOK tightening, tightening made while the
// tool was disabled and unknown value put its car on hold, each quality gate decision against the holds open at that point of
// the log, and each pending cycle against the pairs. It returns an error
// only when it could not check.
func (s *Store) Audit(ctx context.Context, o AuditOptions) (*AuditReport, error) {
	if o.MaxProblems <= 0 {
		o.MaxProblems = AuditMaxProblemsDefault
	}
	r := &AuditReport{Problems: []Problem{}, Conflicts: []ConflictRef{}}
	err := readOnly(ctx, s, func(tx pgx.Tx) error {
		// Times in problems read the same on every server; the checks
		// hash-join the whole log with each derived table.
		if _, err := tx.Exec(ctx, `SET LOCAL TimeZone = 'UTC'; SET LOCAL work_mem = '256MB'; SET LOCAL jit = off`); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		count := 0
		n, err := walkChain(ctx, tx, o.Anchors, func(p Problem) bool {
			r.Problems = append(r.Problems, p)
			count++
			if count >= o.MaxProblems {
				r.Truncated = true
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
		r.Rows = n
		if err := tx.QueryRow(ctx, `SELECT seq, hash FROM chain_head WHERE id = 1`).Scan(&r.Head.Seq, &r.Head.Hash); err != nil {
			return fmt.Errorf("audit: chain head: %w", err)
		}
		if r.Conflicts, err = conflicts(ctx, tx, o.MaxProblems); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, auditSQL, o.MaxProblems+1)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		per := make([][]Problem, len(auditChecks))
		var c int
		var p Problem
		if _, err := pgx.ForEachRow(rows, []any{&c, &p.Seq, &p.EventID, &p.VIN, &p.What}, func() error {
			p.Check, p.Table = auditChecks[c].check, auditChecks[c].table
			per[c] = append(per[c], p)
			return nil
		}); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		for _, ps := range per {
			if len(ps) > o.MaxProblems {
				ps, r.Truncated = ps[:o.MaxProblems], true
			}
			r.Problems = append(r.Problems, ps...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// gap is a run of rows retention removed, from its first seq: its last seq
// and the last row's hash.
type gap struct {
	last int64
	hash []byte
}

// walkChain walks the event log in seq order and calls report with each
// problem until it returns false. It returns the rows read. Runs of rows
// recorded in chain_gaps are stepped over, and chain_gaps must equal the
// list of the latest retention event in the log (gapProblems).
func walkChain(ctx context.Context, tx pgx.Tx, anchors []Anchor, report func(Problem) bool) (int64, error) {
	gaps, err := chainGaps(ctx, tx)
	if err != nil {
		return 0, err
	}
	want := map[int64][]byte{}
	for _, a := range anchors {
		want[a.Seq] = a.Hash
	}
	rows, err := tx.Query(ctx, `SELECT seq, event_id, payload, prev_hash, hash FROM event_log ORDER BY seq`)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	var n, seq int64
	next := int64(1) // the seq the next row should have
	prev := []byte{}
	var id string
	var payload, prevHash, hash []byte
	var ret *retentionRef // the latest retention event
	going := true
	problem := func(p Problem) {
		if going {
			going = report(p)
		}
	}
	// skip steps over the recorded retention gaps starting at next.
	skip := func() {
		for {
			g, ok := gaps[next]
			if !ok {
				return
			}
			next, prev = g.last+1, g.hash
		}
	}
	skip()
	_, err = pgx.ForEachRow(rows, []any{&seq, &id, &payload, &prevHash, &hash}, func() error {
		n++
		if !going {
			return nil
		}
		linked := true
		switch {
		case seq < next:
			problem(Problem{Check: CheckChain, Seq: seq, EventID: id, What: "a second row with this seq: inserted out of band"})
			return nil
		case seq > next:
			problem(Problem{Check: CheckChain, Seq: seq, EventID: id, What: fmt.Sprintf("rows %d..%d are missing (deleted)", next, seq-1)})
			linked = false
		}
		if linked && !bytes.Equal(prevHash, prev) {
			problem(Problem{Check: CheckChain, Seq: seq, EventID: id, What: "link to the previous row does not match (inserted or altered out of band)"})
		}
		if !bytes.Equal(hash, ChainHash(prevHash, seq, id, payload)) {
			problem(Problem{Check: CheckChain, Seq: seq, EventID: id, What: "content does not match its hash (changed)"})
		}
		if h, ok := want[seq]; ok {
			if !bytes.Equal(h, hash) {
				problem(Problem{Check: CheckAnchor, Seq: seq, EventID: id, What: "the row no longer carries the anchored hash: the log was rewritten"})
			}
			delete(want, seq)
		}
		if event.IsRetentionID(id) {
			ret = retentionOf(seq, id, payload)
		}
		prev, next = append(prev[:0:0], hash...), seq+1
		skip()
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("audit: %w", err)
	}
	for s := range want {
		problem(Problem{Check: CheckAnchor, Seq: s, What: "the anchored row is gone from the log"})
	}
	for _, p := range gapProblems(gaps, ret) {
		problem(p)
	}
	var headSeq int64
	var headHash []byte
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM chain_head WHERE id = 1`).Scan(&headSeq, &headHash); err != nil {
		return n, fmt.Errorf("audit: chain head: %w", err)
	}
	if headSeq != next-1 || !bytes.Equal(headHash, prev) {
		problem(Problem{Check: CheckChain, Seq: headSeq, What: fmt.Sprintf("chain head (seq %d) does not match the last row (seq %d): rows removed from the end or added past it", headSeq, next-1)})
	}
	return n, nil
}

// auditEvents reads every logged event's hashed payload, parsed once
// (the OFFSET 0 keeps the planner from parsing it again for every field)
// into the fields the checks compare, with times truncated to microseconds
// as the tracker stores them, and keeps that for all checks of the one
// audit query. kept is where the record begins after retention: references
// to earlier events are not checked.
var auditEvents = `WITH kept AS (
	SELECT retained_from AS from_at, identity_policy AS policy FROM trace_settings WHERE id = 1
), evm AS MATERIALIZED (
	SELECT l.seq, l.event_id AS log_id, l.kind AS log_kind, l.plant AS log_plant, l.line AS log_line,
		l.station AS log_station, l.vin AS log_vin, l.occurred_at AS log_at, l.recorded_at AS log_recorded,
		p IS NULL AS unparsable, p->>'id' AS event_id, p->>'kind' AS kind, p->>'plant' AS plant, p->>'line' AS line, p->>'station' AS station,
		coalesce(p->>'vin', '') AS vin, coalesce(p->>'body', '') AS body,
		regexp_replace(p->>'occurred_at', '(\.\d{6})\d+', '\1')::timestamptz AS at,
		` + jsonTimeSQL(`p->>'recorded_at'`) + ` AS recorded,
		p->'data'->>'result' AS result, (p->'data'->>'counter')::bigint AS counter,
		` + jsonTimeSQL(`p->'data'->>'started_at'`) + ` AS started_at,
		` + jsonArraySQL(`p->'data'->'parts'`) + ` AS parts, ` + jsonArraySQL(`p->'data'->'joints'`) + ` AS joints,
		` + jsonArraySQL(`p->'data'->'tests'`) + ` AS tests, ` + jsonArraySQL(`p->'data'->'bad'`) + ` AS bad,
		p->'data'->>'state' AS state, (p->'data'->>'fault_code')::int AS fault_code,
		coalesce(p->'data'->>'fault_text', '') AS fault_text, (p->'data'->>'andon')::boolean AS andon,
		coalesce(p->'data'->>'vin_present', '') AS vin_present,
		(p->'data'->>'active')::boolean AS active, coalesce(p->'data'->>'code', '') AS code,
		coalesce(p->'data'->>'text', '') AS text, coalesce((p->'data'->>'cycle')::bigint, 0) AS cycle,
		-- A tightening's data, its joint and its interlock flag.
		CASE WHEN p->>'kind' = 'tightening' THEN p->'data' END AS tdata, coalesce(p->'data'->>'joint', '') AS joint,
		coalesce((p->'data'->>'while_disabled')::boolean, false) AS while_disabled,
		-- A person's decision (kind human): its action and the event it cites.
		p->'data'->>'action' AS action, coalesce(p->'data'->>'cites', '') AS cites,
		CASE WHEN p->>'kind' = 'human' THEN p->'data' END AS hdata,
		-- The cars an SPC rule break (kind spc) holds.
		CASE WHEN p->>'kind' = 'spc' THEN ` + jsonArraySQL(`p->'data'->'hold'`) + ` END AS held,
		-- The car a cycle is filed under, as the rules file it
		-- (rules/identity.go): a pending cycle under the VIN it was
		-- resolved to ('' while pending), under the body-number policy the
		-- body number, else the VIN or the body number. pseq is where in the
		-- log the rules derived it: a pending cycle is derived with the event
		-- that resolved it.
		CASE WHEN pc.event_id IS NOT NULL THEN pc.vin
			WHEN (SELECT policy FROM kept) = 'body-number' AND coalesce(p->>'body', '') <> '' THEN p->>'body'
			WHEN coalesce(p->>'vin', '') <> '' THEN p->>'vin' ELSE coalesce(p->>'body', '') END AS car,
		pc.event_id IS NOT NULL AS pending, greatest(l.seq, rs.seq) AS pseq
	FROM event_log l CROSS JOIN LATERAL (SELECT payload_jsonb(l.payload) AS p OFFSET 0) j
	LEFT JOIN pending_cycles pc ON pc.event_id = l.event_id
	LEFT JOIN event_ids rs ON rs.event_id = pc.resolved_event_id
), cyc AS NOT MATERIALIZED (
	SELECT * FROM evm WHERE kind = 'cycle'
), slots AS (
	-- The joints, tests and parts of the cycles that may have an unknown
	-- value, by slot, with their names and whether a value is null.
	SELECT e.event_id, 'joint' AS kind, a.o::int AS slot, coalesce(a.v->>'joint', '') AS name,
		a.v->>'torque_nm' IS NULL OR a.v->>'ok' IS NULL AS nil -- a null angle without a bad tag is not measured
	FROM cyc e, jsonb_array_elements(e.joints) WITH ORDINALITY AS a(v, o) WHERE e.joints::text LIKE '%null%' OR e.bad <> '[]'
	UNION ALL
	SELECT e.event_id, 'test', a.o::int, coalesce(a.v->>'name', ''), a.v->>'value' IS NULL OR a.v->>'ok' IS NULL
	FROM cyc e, jsonb_array_elements(e.tests) WITH ORDINALITY AS a(v, o) WHERE e.tests::text LIKE '%null%' OR e.bad <> '[]'
	UNION ALL
	SELECT e.event_id, 'part', a.o::int, coalesce(a.v->>'part_number', ''), false
	FROM cyc e, jsonb_array_elements(e.parts) WITH ORDINALITY AS a(v, o) WHERE e.bad <> '[]'
), badslots AS (
	SELECT e.event_id, lower(m[1]) AS kind, m[2]::int AS slot, bool_or(m[3] IN ('Name', 'PartNumber')) AS noname
	FROM cyc e, jsonb_array_elements(e.bad) AS b(v), regexp_match(b.v->>'tag', '^(Joint|Test|Part)([1-9][0-9]{0,8})\.(.*)$') AS m
	WHERE m IS NOT NULL
	GROUP BY 1, 2, 3
), unk AS MATERIALIZED (
	-- The items each cycle could not read (rules.Unknowns): a null value
	-- or a bad PLC tag of the slot; nameless when the name was bad.
	SELECT coalesce(s.event_id, b.event_id) AS event_id, coalesce(s.kind, b.kind) AS kind, coalesce(s.slot, b.slot) AS slot,
		CASE WHEN b.noname OR s.event_id IS NULL THEN '' ELSE s.name END AS name
	FROM slots s FULL JOIN badslots b ON b.event_id = s.event_id AND b.kind = s.kind AND b.slot = s.slot
	WHERE s.nil OR b.event_id IS NOT NULL
)`

// jsonArraySQL is SQL for a payload array, '[]' when it is absent or not
// an array (null).
func jsonArraySQL(expr string) string {
	return `CASE WHEN jsonb_typeof(` + expr + `) = 'array' THEN ` + expr + ` ELSE '[]' END`
}

// jsonTimeSQL is SQL for a payload time truncated to microseconds; NULL
// for Go's zero time.
func jsonTimeSQL(expr string) string {
	return `CASE WHEN ` + expr + ` LIKE '0001-01-01T00:00:00%' THEN NULL ELSE regexp_replace(` + expr + `, '(\.\d{6})\d+', '\1')::timestamptz END`
}

// pseqSQL is SQL for where in the log the rules derived the event named
// by col: its seq, or for a pending cycle the seq of the event that
// resolved it. NULL when the event is not in the log.
func pseqSQL(col string) string {
	return `(SELECT greatest(i.seq, r.seq) FROM event_ids i LEFT JOIN pending_cycles p ON p.event_id = i.event_id
		LEFT JOIN event_ids r ON r.event_id = p.resolved_event_id WHERE i.event_id = ` + col + `)`
}

// auditCheck is one check of the audit query: CTEs it adds (named with
// its number, which replaces %[1]d) and a SELECT of (seq, event_id,
// vin, what) ordered and limited to $1.
type auditCheck struct {
	check, table string
	ctes, sel    string
}

// derivedCheck compares the rows a table holds with the rows the payloads
// derive (expected), both ways, on key; cols are compared. Problems are
// grouped by event.
func derivedCheck(table, expected string, key, cols []string) auditCheck {
	on, keyCols, x, s := "", "", "", ""
	for i, k := range key {
		if i > 0 {
			on += " AND "
			keyCols += ", "
		}
		on += "s." + k + " = x." + k
		keyCols += "coalesce(x." + k + "::text, s." + k + "::text)"
	}
	for i, c := range cols {
		if i > 0 {
			x += ", "
			s += ", "
		}
		x += "x." + c
		s += "s." + c
	}
	keyCols = "concat_ws(', ', " + keyCols + ")"
	return auditCheck{check: CheckDerived, table: table,
		ctes: `x%[1]d AS MATERIALIZED (` + expected + `), m%[1]d AS (
		SELECT coalesce(x.event_id, s.event_id) AS event_id, coalesce(x.vin, s.vin, '') AS vin,
			CASE WHEN s.event_id IS NULL THEN 1 WHEN x.event_id IS NULL THEN 2 ELSE 3 END AS how,
			` + keyCols + ` AS key,
			'stored (' || concat_ws(', ', ` + s + `) || '), event says (' || concat_ws(', ', ` + x + `) || ')' AS detail
		FROM x%[1]d x FULL JOIN ` + table + ` s ON ` + on + `
		WHERE s.event_id IS NULL OR x.event_id IS NULL OR (` + x + `) IS DISTINCT FROM (` + s + `)
	)`,
		sel: `SELECT coalesce(min(e.seq), 0), m.event_id, min(m.vin), CASE m.how
		WHEN 1 THEN 'rows missing that the event derives: ' || string_agg(m.key, '; ' ORDER BY m.key)
		WHEN 2 THEN 'rows with no event in the log that derives them (inserted, or their event deleted): ' || string_agg(m.key, '; ' ORDER BY m.key)
		ELSE 'rows differ from their event: ' || string_agg('row ' || m.key || ' ' || m.detail, '; ' ORDER BY m.key) END
	FROM m%[1]d m LEFT JOIN event_ids e ON e.event_id = m.event_id
	GROUP BY m.event_id, m.how
	ORDER BY 1, 2 LIMIT $1`}
}

// auditSQL is the audit query: every check below over one parse of the
// log, each check's problems tagged with its number.
var auditSQL = func() string {
	q := auditEvents
	var sels []string
	for i, c := range auditChecks {
		n := strconv.Itoa(i)
		if c.ctes != "" {
			q += ",\n" + strings.ReplaceAll(c.ctes, "%[1]d", n)
		}
		sels = append(sels, "(SELECT "+n+" AS c, * FROM ("+strings.ReplaceAll(c.sel, "%[1]d", n)+") q"+n+")")
	}
	return q + "\nSELECT * FROM (" + strings.Join(sels, "\nUNION ALL\n") + ") problems"
}()

var auditChecks = []auditCheck{
	{check: CheckIndex, table: "event_ids", sel: `
	SELECT coalesce(l.seq, i.seq), coalesce(l.event_id, i.event_id), coalesce(l.vin, ''),
		CASE WHEN i.event_id IS NULL THEN 'in the log but not in event_ids: inserted out of band'
		     WHEN l.seq IS NULL THEN 'in event_ids but not in the log: deleted'
		     ELSE 'event_ids says seq ' || i.seq || ' at ' || i.occurred_at || ', the log seq ' || l.seq || ' at ' || l.occurred_at END
	FROM event_log l FULL JOIN event_ids i ON i.event_id = l.event_id AND i.seq = l.seq AND i.occurred_at = l.occurred_at
	WHERE l.seq IS NULL OR i.event_id IS NULL
	ORDER BY 1 LIMIT $1`},
	{check: CheckEnvelope, table: "event_log", sel: `
	SELECT seq, log_id, log_vin, CASE WHEN unparsable THEN 'the payload is not UTF-8 JSON: changed out of band' ELSE
		'columns differ from the hashed payload: ' || concat_ws(', ',
		CASE WHEN log_id IS DISTINCT FROM event_id THEN 'event_id' END,
		CASE WHEN log_kind IS DISTINCT FROM kind THEN 'kind' END,
		CASE WHEN log_plant IS DISTINCT FROM plant THEN 'plant' END,
		CASE WHEN log_line IS DISTINCT FROM line THEN 'line' END,
		CASE WHEN log_station IS DISTINCT FROM station THEN 'station' END,
		CASE WHEN log_vin IS DISTINCT FROM vin THEN 'vin' END,
		CASE WHEN log_at IS DISTINCT FROM at THEN 'occurred_at' END,
		CASE WHEN log_recorded IS DISTINCT FROM recorded THEN 'recorded_at' END) END
	FROM evm
	WHERE (log_id, log_kind, log_plant, log_line, log_station, log_vin, log_at, log_recorded) IS DISTINCT FROM
	      (event_id, kind, plant, line, station, vin, at, recorded)
	ORDER BY seq LIMIT $1`},
	derivedCheck("station_visits", `
		SELECT event_id, car AS vin, station, counter AS cycle_counter, result, started_at, at AS finished_at FROM cyc WHERE car <> ''`,
		[]string{"event_id"}, []string{"vin", "station", "cycle_counter", "result", "started_at", "finished_at"}),
	derivedCheck("installed_parts", `
		SELECT event_id, o::int AS slot, car AS vin, station, v->>'part_number' AS part_number, v->>'serial' AS serial,
			v->>'lot' AS lot, v->>'supplier' AS supplier, at AS installed_at
		FROM cyc, jsonb_array_elements(parts) WITH ORDINALITY AS a(v, o) WHERE car <> ''`,
		[]string{"event_id", "slot"}, []string{"vin", "station", "part_number", "serial", "lot", "supplier", "installed_at"}),
	derivedCheck("joints", `
		SELECT event_id, o::int AS slot, car AS vin, station, v->>'joint' AS joint, v->>'tool' AS tool,
			(v->>'torque_nm')::float8 AS torque_nm, (v->>'angle_deg')::float8 AS angle_deg, (v->>'ok')::boolean AS ok, at AS made_at
		FROM cyc, jsonb_array_elements(joints) WITH ORDINALITY AS a(v, o) WHERE car <> ''`,
		[]string{"event_id", "slot"}, []string{"vin", "station", "joint", "tool", "torque_nm", "angle_deg", "ok", "made_at"}),
	derivedCheck("test_results", `
		SELECT event_id, o::int AS slot, car AS vin, station, v->>'name' AS name, (v->>'value')::float8 AS value, v->>'unit' AS unit,
			(v->>'low')::float8 AS low, (v->>'high')::float8 AS high, (v->>'ok')::boolean AS ok, at AS tested_at
		FROM cyc, jsonb_array_elements(tests) WITH ORDINALITY AS a(v, o) WHERE car <> ''`,
		[]string{"event_id", "slot"}, []string{"vin", "station", "name", "value", "unit", "low", "high", "ok", "tested_at"}),
	derivedCheck("tightenings", `
		SELECT event_id, car AS vin, station, tdata->>'controller' AS controller, (tdata->>'channel')::int AS channel,
			(tdata->>'tightening_id')::bigint AS tightening_id, coalesce(tdata->>'vin', '') AS tool_vin, (tdata->>'pset')::int AS pset,
			coalesce(tdata->>'pset_name', '') AS pset_name, (tdata->>'batch_size')::int AS batch_size, (tdata->>'batch_counter')::int AS batch_counter,
			tdata->>'batch_status' AS batch_status, result, tdata->>'torque_status' AS torque_status, tdata->>'angle_status' AS angle_status,
			(tdata->>'torque_nm')::float8 AS torque_nm, (tdata->>'torque_min_nm')::float8 AS torque_min_nm,
			(tdata->>'torque_max_nm')::float8 AS torque_max_nm, (tdata->>'torque_target_nm')::float8 AS torque_target_nm,
			(tdata->>'angle_deg')::float8 AS angle_deg, (tdata->>'angle_min_deg')::float8 AS angle_min_deg,
			(tdata->>'angle_max_deg')::float8 AS angle_max_deg, (tdata->>'angle_target_deg')::float8 AS angle_target_deg,
			coalesce(tdata->>'torque_unit', '') AS torque_unit, `+jsonTimeSQL(`tdata->>'controller_time'`)+` AS controller_time,
			coalesce(tdata->>'clock', '') AS clock, joint, coalesce(tdata->>'class', '') AS class, coalesce(tdata->>'tool_serial', '') AS tool_serial,
			(tdata->>'mid')::int AS mid, while_disabled AS made_while_disabled, at AS made_at
		FROM evm WHERE kind = 'tightening' AND vin <> '' AND (SELECT policy FROM kept) <> 'body-number'`,
		[]string{"event_id"}, []string{"vin", "station", "controller", "channel", "tightening_id", "tool_vin", "pset", "pset_name",
			"batch_size", "batch_counter", "batch_status", "result", "torque_status", "angle_status", "torque_nm", "torque_min_nm",
			"torque_max_nm", "torque_target_nm", "angle_deg", "angle_min_deg", "angle_max_deg", "angle_target_deg", "torque_unit",
			"controller_time", "clock", "joint", "class", "tool_serial", "mid", "made_while_disabled", "made_at"}),
	derivedCheck("(SELECT b.*, coalesce(v.vin, '') AS vin FROM bad_values b LEFT JOIN station_visits v USING (event_id))", `
		SELECT event_id, car AS vin, v->>'tag' AS tag, v->>'node_id' AS node_id, v->>'reason' AS reason
		FROM cyc, jsonb_array_elements(bad) AS a(v) WHERE car <> ''`,
		[]string{"event_id", "tag"}, []string{"node_id", "reason"}),
	derivedCheck("(SELECT s.*, '' AS vin FROM station_states s)", `
		SELECT event_id, '' AS vin, station, counter, state, fault_code, fault_text, andon, vin_present, at AS changed_at
		FROM evm WHERE kind = 'state'`,
		[]string{"event_id"}, []string{"station", "counter", "state", "fault_code", "fault_text", "andon", "vin_present", "changed_at"}),
	derivedCheck("(SELECT a.*, '' AS vin FROM alarms a)", `
		SELECT event_id, '' AS vin, station, counter, coalesce(active, kind = 'conflict') AS active,
			CASE WHEN kind = 'conflict' THEN 'conflict' ELSE code END AS code, text, cycle, at AS occurred_at
		FROM evm WHERE kind IN ('alarm', 'conflict', 'spc')`,
		[]string{"event_id"}, []string{"station", "counter", "active", "code", "text", "cycle", "occurred_at"}),
	derivedCheck("car_ids", `
		SELECT DISTINCT ON (body, vin) event_id, vin, body, at AS paired_at
		FROM evm WHERE kind = 'cycle' AND vin <> '' AND body <> '' ORDER BY body, vin, seq`,
		[]string{"body", "vin"}, []string{"event_id", "paired_at"}),
	derivedCheck("human_actions", `
		SELECT event_id, vin, action, station, (hdata->>'user_id')::bigint AS user_id, hdata->>'user' AS user_name, hdata->>'role' AS role,
			coalesce(hdata->>'reason', '') AS reason, code, coalesce(hdata->>'zone', '') AS zone,
			coalesce(hdata->>'severity', '') AS severity, text, coalesce(hdata->>'lot', '') AS lot,
			coalesce(hdata->>'meaning', '') AS meaning, cites, at AS occurred_at
		FROM evm WHERE kind = 'human'`,
		[]string{"event_id"}, []string{"vin", "action", "station", "user_id", "user_name", "role", "reason", "code", "zone", "severity", "text",
			"lot", "meaning", "cites", "occurred_at"}),
	{check: CheckIdentity, table: "pending_cycles", sel: `
	SELECT e.seq, e.event_id, coalesce(p.vin, ''), CASE
		WHEN p.event_id IS NULL THEN 'a cycle with only a body number that is neither filed under a car nor pending (its pending row deleted)'
		WHEN p.body <> e.body OR p.station <> e.station THEN 'pending row differs from its event (body number ' || p.body || ', station ' || p.station || ')'
		WHEN p.resolved_event_id IS NOT NULL AND r.event_id IS NULL THEN 'resolved by ' || p.resolved_event_id || ', which is not in the log'
		ELSE 'filed under ' || p.vin || ', which its body number ' || p.body || ' was not paired with by ' || coalesce(p.resolved_event_id, '') END
	FROM evm e CROSS JOIN kept
	LEFT JOIN pending_cycles p ON p.event_id = e.event_id
	LEFT JOIN evm r ON r.event_id = p.resolved_event_id
	WHERE e.kind = 'cycle' AND e.vin = '' AND e.body <> '' AND kept.policy = 'vin' AND e.at >= kept.from_at AND (p.event_id IS NULL
		OR p.body <> e.body OR p.station <> e.station
		OR (p.resolved_event_id IS NOT NULL AND (r.event_id IS NULL
			OR NOT EXISTS (SELECT 1 FROM car_ids c WHERE c.body = p.body AND c.vin = p.vin))))
	ORDER BY 1 LIMIT $1`},
	{check: CheckDerived, table: "part_lots", sel: `
	SELECT 0::bigint, '', '', 'lot ' || coalesce(i.lot, l.lot) || ' of ' || coalesce(i.part_number, l.part_number) || ' from ' ||
		coalesce(i.supplier, l.supplier) || CASE
		WHEN l.lot IS NULL THEN ': installed but missing from the lot index (deleted): lot questions would not find it'
		WHEN i.lot IS NULL THEN ': in the lot index but no part of it is installed (inserted)'
		ELSE ': the lot index says ' || l.first_at || ' to ' || l.last_at || ' but its parts were installed ' || i.f || ' to ' || i.t ||
			': lot questions would miss cars' END
	FROM (SELECT lot, part_number, supplier, min(installed_at) AS f, max(installed_at) AS t FROM installed_parts GROUP BY 1, 2, 3) i
	FULL JOIN part_lots l ON l.lot = i.lot AND l.part_number = i.part_number AND l.supplier = i.supplier
	CROSS JOIN kept
	WHERE l.lot IS NULL OR (i.lot IS NULL AND l.last_at >= kept.from_at) OR l.first_at > i.f OR l.last_at < i.t
	ORDER BY 4 LIMIT $1`},
	{check: CheckHolds, table: "holds", sel: `
	SELECT seq, opened_event_id, vin, 'hold ' || id || ' (' || kind || ' at ' || station || '): ' || why FROM (
	SELECT coalesce(o.seq, 0) AS seq, h.opened_event_id, h.vin, h.id, h.kind, h.station, CASE
		WHEN o.event_id IS NULL THEN 'opened by an event that is not in the log'
		WHEN (h.kind = 'spc') <> (o.kind = 'spc') THEN 'an spc hold opened by an event of kind ' || o.kind || ', or another hold by an spc break'
		WHEN o.car <> h.vin AND NOT (h.kind = 'spc' AND o.held @> jsonb_build_array(h.vin)) THEN 'opened by an event of another car (' || o.car || ')'
		WHEN h.kind = 'spc' AND o.station <> h.station THEN 'an spc hold at ' || h.station || ' opened by a break at ' || o.station
		WHEN h.kind = 'nok' AND o.result IS DISTINCT FROM 'NOK' THEN 'a NOK hold opened by a cycle whose result is ' || coalesce(o.result, o.kind)
		WHEN h.kind = 'unknown' AND (o.station <> h.station OR NOT EXISTS (SELECT 1 FROM unk u WHERE u.event_id = h.opened_event_id
			AND u.kind = h.item_kind AND u.slot = h.item_slot AND u.name = h.item_name))
			THEN 'an unknown hold for ' || h.item_kind || ' ' || h.item_name || ' in slot ' || h.item_slot || ' opened by a cycle that read it'
		WHEN h.kind = 'interlock' AND NOT (o.kind = 'tightening' AND o.while_disabled)
			THEN 'an interlock hold opened by an event that is not a tightening made while the tool was disabled'
		WHEN h.kind = 'missing' AND (o.kind <> 'cycle' OR o.station <> h.station)
			THEN 'a missing-joint hold for ' || h.item_name || ' opened by an event that is not the car''s cycle at ' || h.station
		WHEN h.kind IN ('defect', 'inspection', 'manual') AND (o.kind <> 'human' OR o.action IS DISTINCT FROM
			CASE h.kind WHEN 'defect' THEN 'defect' WHEN 'inspection' THEN 'repair' ELSE 'hold' END)
			THEN 'a ' || h.kind || ' hold opened by ' || o.kind || ' event ' || o.event_id || ', which is not a person''s ' ||
			CASE h.kind WHEN 'defect' THEN 'defect' WHEN 'inspection' THEN 'repair' ELSE 'manual hold' END
		WHEN h.closed_event_id IS NOT NULL AND c.event_id IS NULL THEN 'closed by ' || h.closed_event_id || ', which is not in the log'
		WHEN c.event_id IS NOT NULL AND (c.car <> h.vin OR c.pseq < o.pseq) THEN 'closed by ' || c.event_id || ', which is not a later event of this car'
		WHEN c.kind = 'human' AND NOT coalesce((h.kind = 'nok' AND c.action = 'release')
			OR (h.kind = 'defect' AND (c.action = 'release' OR (c.action = 'repair' AND c.cites = h.opened_event_id)))
			OR (h.kind = 'inspection' AND c.action = 'release')
			OR (h.kind = 'manual' AND c.action = 'unhold' AND c.cites = h.opened_event_id), false)
			THEN 'closed by ' || c.event_id || ', a person''s ' || coalesce(c.action, '?') || ' that does not close it'
		WHEN c.kind = 'human' THEN NULL
		WHEN c.event_id IS NOT NULL AND h.kind IN ('defect', 'inspection', 'manual')
			THEN 'closed by ' || c.event_id || ', which is not a person''s repair, release or unhold'
		WHEN c.event_id IS NOT NULL AND h.kind = 'nok' AND (c.result IS DISTINCT FROM 'OK'
				OR (c.kind = 'tightening' AND (c.station <> h.station OR c.joint <> h.item_name)))
			THEN 'closed by ' || c.event_id || ', which is not an OK cycle (rework) nor an OK tightening of the joint'
		WHEN c.event_id IS NOT NULL AND h.kind = 'spc' AND (c.kind <> 'cycle' OR c.result IS DISTINCT FROM 'OK')
			THEN 'closed by ' || c.event_id || ', which is not an OK cycle (rework)'
		WHEN c.event_id IS NOT NULL AND h.kind = 'interlock' AND (c.kind <> 'cycle' OR c.result IS DISTINCT FROM 'OK')
			THEN 'closed by ' || c.event_id || ', which is not an OK cycle (rework)'
		WHEN c.event_id IS NOT NULL AND h.kind = 'missing' AND NOT coalesce(
				(c.kind = 'tightening' AND c.result = 'OK' AND c.station = h.station AND c.joint = h.item_name)
				OR (c.kind = 'cycle' AND c.result = 'OK' AND EXISTS (SELECT 1 FROM jsonb_array_elements(c.joints) AS a(v)
					WHERE a.v->>'joint' = h.item_name AND (a.v->>'ok')::boolean AND a.v->>'torque_nm' IS NOT NULL)), false)
			THEN 'closed by ' || c.event_id || ', which is neither an OK tightening of joint ' ||
				h.item_name || ' at ' || h.station || ' nor a rework cycle that reports it OK'
		WHEN c.event_id IS NOT NULL AND h.kind = 'route' AND c.station <> h.station THEN 'closed by ' || c.event_id || ', which is not the cycle at the skipped station'
		WHEN c.event_id IS NOT NULL AND h.kind = 'unknown' AND NOT EXISTS (
				-- the closing cycle reports the item, by name or (nameless) by
				-- slot at the hold's station, and could read it
				SELECT 1 FROM jsonb_array_elements(CASE h.item_kind WHEN 'joint' THEN c.joints WHEN 'test' THEN c.tests ELSE c.parts END)
					WITH ORDINALITY AS a(v, o)
				WHERE CASE WHEN h.item_name <> '' THEN coalesce(a.v->>(CASE h.item_kind WHEN 'joint' THEN 'joint' WHEN 'test' THEN 'name' ELSE 'part_number' END), '') = h.item_name
						ELSE c.station = h.station AND a.o = h.item_slot END
					AND NOT EXISTS (SELECT 1 FROM unk u WHERE u.event_id = c.event_id AND u.kind = h.item_kind AND u.slot = a.o))
			THEN 'closed by ' || c.event_id || ', which does not report ' || h.item_kind || ' ' ||
			CASE WHEN h.item_name <> '' THEN h.item_name ELSE 'in slot ' || h.item_slot || ' at ' || h.station END || ' with a known value'
		WHEN (h.closed_event_id IS NULL) <> (h.closed_at IS NULL) THEN 'closed without a closing event'
		END AS why
	FROM holds h CROSS JOIN kept
	LEFT JOIN evm o ON o.event_id = h.opened_event_id
	LEFT JOIN evm c ON c.event_id = h.closed_event_id
	WHERE h.opened_at >= kept.from_at) hc
	WHERE why IS NOT NULL
	UNION ALL
	SELECT e.seq, e.event_id, e.car, 'a NOK cycle that put no hold on the car (hold deleted)'
	FROM cyc e WHERE e.result = 'NOK' AND e.car <> ''
		AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.opened_event_id = e.event_id AND h.kind = 'nok')
	UNION ALL
	SELECT e.seq, e.event_id, e.car, CASE WHEN e.result = 'NOK' AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.opened_event_id = e.event_id AND h.kind = 'nok')
		THEN 'a NOK tightening that put no hold on the car (hold deleted)'
		ELSE 'a tightening made while the tool was disabled that put no hold on the car (hold deleted)' END
	FROM evm e CROSS JOIN kept WHERE e.kind = 'tightening' AND e.vin <> '' AND kept.policy <> 'body-number' AND e.at >= kept.from_at
		AND ((e.result = 'NOK' AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.opened_event_id = e.event_id AND h.kind = 'nok'))
			OR (e.while_disabled AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.opened_event_id = e.event_id AND h.kind = 'interlock')))
	UNION ALL
	SELECT e.seq, e.event_id, v.vin, 'an SPC rule break that put no hold on car ' || v.vin || ' it names (hold deleted)'
	FROM evm e CROSS JOIN LATERAL jsonb_array_elements_text(e.held) AS v(vin)
	WHERE e.kind = 'spc' AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.opened_event_id = e.event_id AND h.kind = 'spc' AND h.vin = v.vin)
	UNION ALL
	SELECT e.seq, e.event_id, e.car, 'an unknown value (' || u.kind || CASE WHEN u.name <> '' THEN ' ' || u.name ELSE '' END ||
		' in slot ' || u.slot || ') that put no hold on the car (hold deleted)'
	FROM unk u JOIN cyc e ON e.event_id = u.event_id
	WHERE e.car <> '' AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.opened_event_id = u.event_id AND h.kind = 'unknown'
		AND h.item_kind = u.kind AND h.item_slot = u.slot)
	UNION ALL
	SELECT e.seq, e.event_id, e.car, 'a person''s ' || e.action || ' that put no hold on the car (hold deleted)'
	FROM evm e WHERE e.kind = 'human' AND e.action IN ('defect', 'repair', 'hold') AND EXISTS (SELECT 1 FROM vehicles v WHERE v.vin = e.vin)
		AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.opened_event_id = e.event_id)
		AND (e.action <> 'repair' OR EXISTS (SELECT 1 FROM holds d WHERE d.opened_event_id = e.cites AND d.closed_event_id = e.event_id))
	ORDER BY 1 LIMIT $1`},
	{check: CheckGate, table: "gate_decisions", sel: `
	SELECT coalesce(e.seq, 0), g.event_id, g.vin, CASE
		WHEN e.event_id IS NULL THEN 'decided on an event that is not in the log'
		WHEN e.car <> g.vin OR (g.kind = 'gate' AND (e.station <> g.station OR e.kind <> 'cycle')) THEN 'decided on an event of another car or station'
		WHEN g.kind = 'release' AND NOT g.released THEN 'a release that does not release'
		WHEN g.kind = 'release' AND NOT EXISTS (SELECT 1 FROM gate_decisions b
			WHERE b.vin = g.vin AND b.kind = 'gate' AND NOT b.released AND ` + pseqSQL("b.event_id") + ` < e.pseq)
			THEN 'a release without an earlier block of the car'
		ELSE CASE WHEN g.released THEN 'released' ELSE 'blocked' END || ' with ' || g.open_holds ||
			' open holds recorded, but ' || o.n || ' holds were open at that point of the log' END
	FROM gate_decisions g CROSS JOIN kept
	LEFT JOIN evm e ON e.event_id = g.event_id AND (e.kind = 'cycle' OR (g.kind = 'release' AND e.kind IN ('human', 'tightening'))) -- a release may be decided on a late tightening or a person's release
	LEFT JOIN LATERAL (
		-- Holds whose events retention removed count by their times.
		SELECT count(*) AS n FROM holds h
		CROSS JOIN LATERAL (SELECT ` + pseqSQL("h.opened_event_id") + ` AS opened, ` + pseqSQL("h.closed_event_id") + ` AS closed) hs
		WHERE h.vin = g.vin
			AND (hs.opened <= e.pseq OR (hs.opened IS NULL AND h.opened_at < kept.from_at))
			AND NOT coalesce(hs.closed <= e.pseq OR (hs.closed IS NULL AND h.closed_at < kept.from_at), false)
	) o ON true
	WHERE g.decided_at >= kept.from_at AND (e.event_id IS NULL OR e.car <> g.vin OR (g.kind = 'gate' AND (e.station <> g.station OR e.kind <> 'cycle'))
		OR g.released <> (o.n = 0) OR g.open_holds <> o.n
		OR (g.kind = 'release' AND NOT EXISTS (SELECT 1 FROM gate_decisions b
			WHERE b.vin = g.vin AND b.kind = 'gate' AND NOT b.released AND ` + pseqSQL("b.event_id") + ` < e.pseq)))
	ORDER BY 1 LIMIT $1`},
}

// conflicts lists the conflicts in the event log, oldest first, at most
// limit. A conflict row whose payload does not parse is the audit's
// problem to report (envelope), not this list's.
func conflicts(ctx context.Context, tx pgx.Tx, limit int) ([]ConflictRef, error) {
	rows, err := tx.Query(ctx, `SELECT seq, event_id, station, occurred_at, coalesce(p->'data'->>'event_id', ''), coalesce(p->'data'->>'text', '')
		FROM event_log CROSS JOIN LATERAL (SELECT payload_jsonb(payload) AS p) j
		WHERE kind = 'conflict' ORDER BY seq LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: conflicts: %w", err)
	}
	out := []ConflictRef{}
	var c ConflictRef
	if _, err := pgx.ForEachRow(rows, []any{&c.Seq, &c.ID, &c.Station, &c.At, &c.EventID, &c.Text}, func() error {
		out = append(out, c)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("audit: conflicts: %w", err)
	}
	return out, nil
}

// chainGaps reads the runs of rows retention removed (chain_gaps), by
// first seq.
func chainGaps(ctx context.Context, tx pgx.Tx) (map[int64]gap, error) {
	gaps := map[int64]gap{}
	rows, err := tx.Query(ctx, `SELECT first_seq, last_seq, last_hash FROM chain_gaps`)
	if err != nil {
		return nil, fmt.Errorf("audit: chain gaps: %w", err)
	}
	var first int64
	var g gap
	if _, err := pgx.ForEachRow(rows, []any{&first, &g.last, &g.hash}, func() error {
		gaps[first] = gap{g.last, append([]byte(nil), g.hash...)}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("audit: chain gaps: %w", err)
	}
	return gaps, nil
}

// retentionRef is a retention event of the log: its seq and id, and the
// runs of removed rows it lists (nil when its payload does not decode).
type retentionRef struct {
	seq  int64
	id   string
	gaps map[int64]event.RetentionGap
}

// retentionOf reads the retention event at seq; a payload that does not
// decode as one lists nothing (the chain check names a changed payload).
func retentionOf(seq int64, id string, payload []byte) *retentionRef {
	r := &retentionRef{seq: seq, id: id}
	var ev event.Event
	if json.Unmarshal(payload, &ev) != nil || ev.Kind != event.KindRetention {
		return r
	}
	d, err := ev.Retention()
	if err != nil {
		return r
	}
	r.gaps = map[int64]event.RetentionGap{}
	for _, g := range d.Gaps {
		r.gaps[g.FirstSeq] = g
	}
	return r
}

// gapProblems compares the runs of removed rows in chain_gaps with those
// the latest retention event lists (ret; nil when the log holds none): a
// run only in chain_gaps (or differing) was added out of band and hides
// deleted rows; a run only in the event was deleted from chain_gaps.
func gapProblems(gaps map[int64]gap, ret *retentionRef) []Problem {
	var out []Problem
	firsts := make([]int64, 0, len(gaps))
	for f := range gaps {
		firsts = append(firsts, f)
	}
	slices.Sort(firsts)
	for _, f := range firsts {
		g := gaps[f]
		switch {
		case ret == nil:
			out = append(out, Problem{Check: CheckChain, Seq: f, Table: "chain_gaps", What: fmt.Sprintf(
				"chain_gaps says rows %d..%d were removed by retention, but no retention event in the log records a removal: a gap added out of band hides deleted rows", f, g.last)})
		case ret.gaps == nil:
			out = append(out, Problem{Check: CheckChain, Seq: ret.seq, EventID: ret.id, Table: "chain_gaps", What: "the latest retention event's payload does not decode: its list of removed rows cannot be checked"})
			return out
		default:
			e, ok := ret.gaps[f]
			if !ok || e.LastSeq != g.last || !bytes.Equal(e.LastHash, g.hash) {
				out = append(out, Problem{Check: CheckChain, Seq: f, EventID: ret.id, Table: "chain_gaps", What: fmt.Sprintf(
					"chain_gaps says rows %d..%d were removed by retention, but the latest retention event (seq %d) does not list that run: a gap added or changed out of band hides deleted rows", f, g.last, ret.seq)})
			}
		}
	}
	if ret == nil || ret.gaps == nil {
		return out
	}
	listed := make([]int64, 0, len(ret.gaps))
	for f := range ret.gaps {
		listed = append(listed, f)
	}
	slices.Sort(listed)
	for _, f := range listed {
		if _, ok := gaps[f]; !ok {
			out = append(out, Problem{Check: CheckChain, Seq: f, EventID: ret.id, Table: "chain_gaps", What: fmt.Sprintf(
				"the latest retention event (seq %d) lists rows %d..%d as removed, but chain_gaps lacks that run (deleted out of band)", ret.seq, f, ret.gaps[f].LastSeq)})
		}
	}
	return out
}
