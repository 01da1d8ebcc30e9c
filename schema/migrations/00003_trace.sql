-- +goose Up

-- Traceability at plant scale (issue 5):
--   * the five big traceability tables become natively partitioned by month
--     of the event's PLC time (occurred_at), so 15+ years of history stay
--     fast and retention drops whole months;
--   * event ids stay unique across all partitions through event_ids, one
--     unpartitioned row per event (see docs/traceability.md);
--   * the quality gate's decisions are recorded;
--   * the writer and auditor roles log in, with least privileges.

-- Roles log in now: the tracker connects as keiline_writer, trace and audit
-- as keiline_auditor (read-only by default). Roles are cluster-wide: another
-- database's migration may change them at the same moment, so a failure is
-- accepted when the role ends up as wanted.
-- +goose StatementBegin
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['keiline_writer', 'keiline_auditor'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r AND rolcanlogin) THEN
            BEGIN
                EXECUTE format('ALTER ROLE %I LOGIN', r);
            EXCEPTION WHEN others THEN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r AND rolcanlogin) THEN
                    RAISE;
                END IF;
            END;
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
                   WHERE r.rolname = 'keiline_auditor' AND s.setdatabase = 0
                     AND 'default_transaction_read_only=on' = ANY (s.setconfig)) THEN
        BEGIN
            ALTER ROLE keiline_auditor SET default_transaction_read_only = on;
        EXCEPTION WHEN others THEN
            NULL; -- a concurrent migration set it; the auditor has SELECT only anyway
        END;
    END IF;
END
$$;
-- +goose StatementEnd

-- Append-only guard for the event log, its partitions and event_ids. The
-- writer has no UPDATE or DELETE privilege at all; this guard also stops the
-- owner. Retention (keiline retention apply) deletes expired event_ids rows
-- with keiline.retention = 'on' set for its transaction.
-- +goose StatementBegin
CREATE FUNCTION keiline_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'event_ids'
       AND current_setting('keiline.retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

ALTER TABLE event_log RENAME TO event_log_v1;
ALTER TABLE station_visits RENAME TO station_visits_v1;
ALTER TABLE installed_parts RENAME TO installed_parts_v1;
ALTER TABLE joints RENAME TO joints_v1;
ALTER TABLE test_results RENAME TO test_results_v1;

-- The raw event log, partitioned by month of occurred_at. seq orders the
-- hash chain (hash = sha256(prev_hash || seq || event_id || 0 || payload)).
CREATE TABLE event_log (
    seq          bigint      NOT NULL,
    event_id     text        NOT NULL,
    kind         text        NOT NULL,
    plant        text        NOT NULL,
    line         text        NOT NULL,
    station      text        NOT NULL,
    vin          text        NOT NULL DEFAULT '',
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    payload      bytea       NOT NULL,
    prev_hash    bytea       NOT NULL,
    hash         bytea       NOT NULL,
    CONSTRAINT event_log_pk PRIMARY KEY (seq, occurred_at)
) PARTITION BY RANGE (occurred_at);

-- Every event id once, across all partitions: the unique key a redelivery
-- hits, and where an event id finds its partition (occurred_at) and chain
-- position (seq).
CREATE TABLE event_ids (
    event_id    text        PRIMARY KEY,
    seq         bigint      NOT NULL UNIQUE,
    occurred_at timestamptz NOT NULL
);

CREATE TABLE station_visits (
    event_id      text        NOT NULL,
    vin           text        NOT NULL,
    station       text        NOT NULL,
    pos           int         NOT NULL,
    cycle_counter bigint      NOT NULL,
    result        text        NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz NOT NULL,
    CONSTRAINT station_visits_pk PRIMARY KEY (event_id, finished_at)
) PARTITION BY RANGE (finished_at);

CREATE TABLE installed_parts (
    event_id     text        NOT NULL,
    slot         int         NOT NULL,
    vin          text        NOT NULL,
    station      text        NOT NULL,
    part_number  text        NOT NULL,
    serial       text        NOT NULL,
    lot          text        NOT NULL,
    supplier     text        NOT NULL,
    installed_at timestamptz NOT NULL,
    CONSTRAINT installed_parts_pk PRIMARY KEY (event_id, slot, installed_at)
) PARTITION BY RANGE (installed_at);

CREATE TABLE joints (
    event_id  text             NOT NULL,
    slot      int              NOT NULL,
    vin       text             NOT NULL,
    station   text             NOT NULL,
    joint     text             NOT NULL,
    tool      text             NOT NULL,
    torque_nm double precision NOT NULL,
    angle_deg double precision NOT NULL,
    ok        boolean          NOT NULL,
    made_at   timestamptz      NOT NULL,
    CONSTRAINT joints_pk PRIMARY KEY (event_id, slot, made_at)
) PARTITION BY RANGE (made_at);

CREATE TABLE test_results (
    event_id  text             NOT NULL,
    slot      int              NOT NULL,
    vin       text             NOT NULL,
    station   text             NOT NULL,
    name      text             NOT NULL,
    value     double precision NOT NULL,
    unit      text             NOT NULL,
    low       double precision NOT NULL,
    high      double precision NOT NULL,
    ok        boolean          NOT NULL,
    tested_at timestamptz      NOT NULL,
    CONSTRAINT test_results_pk PRIMARY KEY (event_id, slot, tested_at)
) PARTITION BY RANGE (tested_at);

-- The monthly partitions that exist (or existed: retention marks them).
CREATE TABLE trace_partitions (
    parent     text        NOT NULL,
    month      date        NOT NULL,
    name       text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    removed_at timestamptz,
    removed_as text CHECK (removed_as IN ('detached', 'dropped')),
    PRIMARY KEY (parent, month)
);

-- Retention and partition settings: a setting, never a code change
-- (keiline history retention set). keep_months: months of history kept by
-- `keiline history retention apply`; ahead_months: months of partitions
-- made ahead of the newest event; retention_mode: detach (keep the tables
-- for archiving) or drop; retained_from: where the kept history begins
-- (retention moves it on; the audit does not look for earlier events).
CREATE TABLE trace_settings (
    id             int         PRIMARY KEY CHECK (id = 1),
    keep_months    int         NOT NULL DEFAULT 180 CHECK (keep_months >= 1),
    ahead_months   int         NOT NULL DEFAULT 3 CHECK (ahead_months BETWEEN 1 AND 24),
    retention_mode text        NOT NULL DEFAULT 'detach' CHECK (retention_mode IN ('detach', 'drop')),
    retained_from  timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO trace_settings (id) VALUES (1);

-- Runs of event log rows that retention removed: the verifier steps over a
-- gap only when it is recorded here, linking on to last_hash.
CREATE TABLE chain_gaps (
    first_seq  bigint      PRIMARY KEY,
    last_seq   bigint      NOT NULL,
    last_hash  bytea       NOT NULL,
    rows       bigint      NOT NULL,
    partition  text        NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT now(),
    CHECK (last_seq >= first_seq)
);

-- keiline_ensure_partitions makes the monthly partitions (UTC months) of
-- every traceability table for each month from p_from to p_to that has
-- none, and returns how many it made. It is SECURITY DEFINER so that the
-- tracker's writer role, which may not run DDL, gets the partitions an
-- event needs; it makes nothing else.
-- +goose StatementBegin
CREATE FUNCTION keiline_ensure_partitions(p_from timestamptz, p_to timestamptz) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d    date;
    last date;
    t    text;
    part text;
    n    int;
    made int := 0;
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR p_to < p_from THEN
        RETURN 0;
    END IF;
    IF p_to - p_from > interval '50 years' THEN
        RAISE EXCEPTION 'keiline_ensure_partitions: % to % is more than 50 years', p_from, p_to;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('keiline_ensure_partitions'));
    d := date_trunc('month', p_from AT TIME ZONE 'UTC')::date;
    last := date_trunc('month', p_to AT TIME ZONE 'UTC')::date;
    WHILE d <= last LOOP
        FOREACH t IN ARRAY ARRAY['event_log', 'station_visits', 'installed_parts', 'joints', 'test_results'] LOOP
            IF NOT EXISTS (SELECT 1 FROM trace_partitions WHERE parent = t AND month = d AND removed_at IS NULL) THEN
                part := t || '_' || to_char(d, 'YYYY_MM');
                n := 1;
                WHILE to_regclass(part) IS NOT NULL LOOP -- a month retention detached, needed again by a late event
                    n := n + 1;
                    part := t || '_' || to_char(d, 'YYYY_MM') || '_' || n;
                END LOOP;
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                    part, t, d::text || ' 00:00:00+00', (d + interval '1 month')::date::text || ' 00:00:00+00');
                IF t = 'event_log' THEN
                    EXECUTE format('CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION keiline_append_only()', part);
                END IF;
                INSERT INTO trace_partitions (parent, month, name) VALUES (t, d, part)
                    ON CONFLICT (parent, month) DO UPDATE SET name = EXCLUDED.name, created_at = now(), removed_at = NULL, removed_as = NULL;
                made := made + 1;
            END IF;
        END LOOP;
        d := (d + interval '1 month')::date;
    END LOOP;
    RETURN made;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION keiline_ensure_partitions(timestamptz, timestamptz) FROM PUBLIC;

-- Partitions for the history already recorded and three months ahead.
SELECT keiline_ensure_partitions(
    least(now(), (SELECT min(occurred_at) FROM event_log_v1)),
    greatest(now(), (SELECT max(occurred_at) FROM event_log_v1)) + interval '3 months');

INSERT INTO event_log (seq, event_id, kind, plant, line, station, vin, occurred_at, recorded_at, committed_at, payload, prev_hash, hash)
    SELECT seq, event_id, kind, plant, line, station, vin, occurred_at, recorded_at, committed_at, payload, prev_hash, hash FROM event_log_v1;
INSERT INTO event_ids (event_id, seq, occurred_at) SELECT event_id, seq, occurred_at FROM event_log_v1;
INSERT INTO station_visits SELECT * FROM station_visits_v1;
INSERT INTO installed_parts SELECT * FROM installed_parts_v1;
INSERT INTO joints SELECT * FROM joints_v1;
INSERT INTO test_results SELECT * FROM test_results_v1;
DROP TABLE event_log_v1, station_visits_v1, installed_parts_v1, joints_v1, test_results_v1;

-- Keyed for the two questions auditors ask: by VIN (with the car's time
-- span from vehicles, so only its months are read) and by part serial,
-- lot, tool, station and time.
-- A car's events with their chain position: read from the index alone.
CREATE INDEX event_log_vin ON event_log (vin, occurred_at) INCLUDE (event_id, seq, hash) WHERE vin <> '';
CREATE INDEX event_log_station_time ON event_log (station, occurred_at);
CREATE INDEX station_visits_vin ON station_visits (vin, finished_at);
CREATE INDEX station_visits_station ON station_visits (station, finished_at);
CREATE INDEX installed_parts_vin ON installed_parts (vin, installed_at);
CREATE INDEX installed_parts_serial ON installed_parts (serial) WHERE serial <> '';
CREATE INDEX installed_parts_lot ON installed_parts (lot, part_number);
CREATE INDEX joints_vin ON joints (vin, made_at);
CREATE INDEX joints_tool_time ON joints (tool, made_at);
CREATE INDEX joints_station_time ON joints (station, made_at);
CREATE INDEX test_results_vin ON test_results (vin, tested_at);
CREATE INDEX test_results_station_time ON test_results (station, tested_at);
CREATE INDEX joints_nok ON joints (station, made_at) WHERE NOT ok;
CREATE INDEX test_results_nok ON test_results (station, tested_at) WHERE NOT ok;
CREATE INDEX holds_vin ON holds (vin, opened_at);

CREATE TRIGGER event_log_no_update BEFORE UPDATE OR DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION keiline_append_only();
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION keiline_append_only();
CREATE TRIGGER event_ids_no_update BEFORE UPDATE OR DELETE ON event_ids
    FOR EACH ROW EXECUTE FUNCTION keiline_append_only();
CREATE TRIGGER event_ids_no_truncate BEFORE TRUNCATE ON event_ids
    FOR EACH STATEMENT EXECUTE FUNCTION keiline_append_only();
DROP FUNCTION event_log_append_only();

-- The quality gate's decision on each car that reaches it: released only
-- with no open hold, else blocked with the open holds named.
CREATE TABLE gate_decisions (
    event_id   text        PRIMARY KEY,
    vin        text        NOT NULL,
    station    text        NOT NULL,
    released   boolean     NOT NULL,
    open_holds int         NOT NULL,
    reason     text        NOT NULL,
    decided_at timestamptz NOT NULL
);
CREATE INDEX gate_decisions_vin ON gate_decisions (vin, decided_at);

-- Least privilege: the writer appends and derives, never changes the log;
-- the auditor reads.
REVOKE ALL ON event_log, event_ids, station_visits, installed_parts, joints, test_results,
    gate_decisions, trace_partitions, trace_settings, chain_gaps FROM keiline_writer, keiline_auditor;
GRANT SELECT, INSERT ON event_log, event_ids TO keiline_writer;
GRANT SELECT, INSERT ON station_visits, installed_parts, joints, test_results, gate_decisions TO keiline_writer;
GRANT SELECT ON trace_settings TO keiline_writer;
GRANT EXECUTE ON FUNCTION keiline_ensure_partitions(timestamptz, timestamptz) TO keiline_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO keiline_auditor;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO keiline_auditor;

-- +goose Down
-- Partitioned history cannot go back to single tables without moving every
-- row; restore from a backup taken before this migration instead.
SELECT 1/0 AS irreversible;
