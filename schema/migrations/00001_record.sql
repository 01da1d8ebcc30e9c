-- +goose Up

-- Roles: the tracker writes as keiline_writer, auditors read as
-- keiline_auditor. Roles are cluster-wide, so they are made only when absent.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'keiline_writer') THEN
        CREATE ROLE keiline_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'keiline_auditor') THEN
        CREATE ROLE keiline_auditor NOLOGIN;
    END IF;
END
$$;
-- +goose StatementEnd

-- The raw event log: every build event as received, append-only, each row's
-- hash chained to the previous row's (hash = sha256(prev_hash || seq ||
-- event_id || payload)).
CREATE TABLE event_log (
    seq          bigint      PRIMARY KEY,
    event_id     text        NOT NULL UNIQUE,
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
    hash         bytea       NOT NULL
);
CREATE INDEX event_log_vin ON event_log (vin) WHERE vin <> '';
CREATE INDEX event_log_station_time ON event_log (station, occurred_at);

-- The head of the hash chain; its row lock serialises writers.
CREATE TABLE chain_head (
    id   int    PRIMARY KEY CHECK (id = 1),
    seq  bigint NOT NULL,
    hash bytea  NOT NULL
);
INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '\x');

-- +goose StatementBegin
CREATE FUNCTION event_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER event_log_no_update BEFORE UPDATE OR DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION event_log_append_only();
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_append_only();

-- A car, from its framing on.
CREATE TABLE vehicles (
    vin           text        PRIMARY KEY,
    model         text        NOT NULL DEFAULT '',
    variant       text        NOT NULL DEFAULT '',
    colour        text        NOT NULL DEFAULT '',
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    last_station  text        NOT NULL,
    last_pos      int         NOT NULL,
    shipped_at    timestamptz
);

-- One row per finished station cycle on a car.
CREATE TABLE station_visits (
    event_id      text        PRIMARY KEY,
    vin           text        NOT NULL,
    station       text        NOT NULL,
    pos           int         NOT NULL,
    cycle_counter bigint      NOT NULL,
    result        text        NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz NOT NULL
);
CREATE INDEX station_visits_vin ON station_visits (vin, finished_at);
CREATE INDEX station_visits_station ON station_visits (station, finished_at);

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
    PRIMARY KEY (event_id, slot)
);
CREATE INDEX installed_parts_vin ON installed_parts (vin);
CREATE INDEX installed_parts_serial ON installed_parts (serial) WHERE serial <> '';
CREATE INDEX installed_parts_lot ON installed_parts (lot, part_number);

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
    PRIMARY KEY (event_id, slot)
);
CREATE INDEX joints_vin ON joints (vin);
CREATE INDEX joints_tool_time ON joints (tool, made_at);

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
    PRIMARY KEY (event_id, slot)
);
CREATE INDEX test_results_vin ON test_results (vin);

-- PLC values that arrived with bad quality or the wrong type: reported, never used.
CREATE TABLE bad_values (
    event_id text NOT NULL,
    tag      text NOT NULL,
    node_id  text NOT NULL,
    reason   text NOT NULL,
    PRIMARY KEY (event_id, tag)
);

-- A car on hold: a NOK result, a route violation, an unusable result.
CREATE TABLE holds (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vin             text        NOT NULL,
    station         text        NOT NULL,
    kind            text        NOT NULL, -- nok, route, bad_data
    reason          text        NOT NULL,
    opened_event_id text        NOT NULL,
    opened_at       timestamptz NOT NULL,
    closed_event_id text,
    closed_at       timestamptz,
    UNIQUE (opened_event_id, kind, station)
);
CREATE INDEX holds_open ON holds (vin) WHERE closed_at IS NULL;

-- Every station state change, and each station's latest state.
CREATE TABLE station_states (
    event_id    text        PRIMARY KEY,
    station     text        NOT NULL,
    counter     bigint      NOT NULL,
    state       text        NOT NULL,
    fault_code  int         NOT NULL,
    fault_text  text        NOT NULL,
    andon       boolean     NOT NULL,
    vin_present text        NOT NULL,
    changed_at  timestamptz NOT NULL
);
CREATE INDEX station_states_station ON station_states (station, changed_at);

CREATE TABLE station_status (
    station     text        PRIMARY KEY,
    counter     bigint      NOT NULL,
    state       text        NOT NULL,
    fault_code  int         NOT NULL,
    fault_text  text        NOT NULL,
    andon       boolean     NOT NULL,
    vin_present text        NOT NULL,
    changed_at  timestamptz NOT NULL
);

GRANT SELECT, INSERT ON event_log TO keiline_writer;
GRANT SELECT, UPDATE ON chain_head TO keiline_writer;
GRANT SELECT, INSERT, UPDATE ON vehicles, holds, station_status TO keiline_writer;
GRANT SELECT, INSERT ON station_visits, installed_parts, joints, test_results, bad_values, station_states TO keiline_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO keiline_auditor;

-- +goose Down
DROP TABLE station_status, station_states, holds, bad_values, test_results, joints,
    installed_parts, station_visits, vehicles, chain_head, event_log;
DROP FUNCTION event_log_append_only();
