-- +goose Up

-- Issue 15: each result a tightening controller reported over the Open
-- Protocol is a joint of the car: one row per tightening event (its id is
-- the station, the controller and the controller's tightening id), derived
-- from the event log like every traceability row and re-derived by the
-- audit. Partitioned by month of the tightening (the event's occurred_at)
-- like the joints a PLC reports.
CREATE TABLE tightenings (
    event_id            text             NOT NULL,
    vin                 text             NOT NULL,
    station             text             NOT NULL,
    controller          text             NOT NULL,
    channel             int              NOT NULL,
    tightening_id       bigint           NOT NULL,
    -- tool_vin is the VIN the controller put on the result, as it was.
    tool_vin            text             NOT NULL,
    pset                int              NOT NULL,
    pset_name           text             NOT NULL,
    batch_size          int              NOT NULL,
    batch_counter       int              NOT NULL,
    batch_status        text             NOT NULL,
    result              text             NOT NULL CHECK (result IN ('OK', 'NOK')),
    torque_status       text             NOT NULL,
    angle_status        text             NOT NULL,
    -- Values in N·m and degrees; NULL is unknown (a result fetched with
    -- MID 0065 carries no limits).
    torque_nm           double precision,
    torque_min_nm       double precision,
    torque_max_nm       double precision,
    torque_target_nm    double precision,
    angle_deg           double precision,
    angle_min_deg       double precision,
    angle_max_deg       double precision,
    angle_target_deg    double precision,
    torque_unit         text             NOT NULL,
    -- controller_time is the controller's timestamp, NULL when it gave
    -- none (clock 'agent': made_at is then the agent's clock).
    controller_time     timestamptz,
    clock               text             NOT NULL,
    -- joint and class are the line config's joint at the tightening's
    -- place in the batch and its VDI/VDE 2862 class ('' when none).
    joint               text             NOT NULL,
    class               text             NOT NULL CHECK (class IN ('', 'A', 'B', 'C')),
    tool_serial         text             NOT NULL,
    mid                 int              NOT NULL,
    made_while_disabled boolean          NOT NULL,
    made_at             timestamptz      NOT NULL,
    CONSTRAINT tightenings_pk PRIMARY KEY (event_id, made_at)
) PARTITION BY RANGE (made_at);

-- The questions: by car, by tool (serial), by controller, by parameter
-- set, and the NOK results of a station.
CREATE INDEX tightenings_vin ON tightenings (vin, made_at);
CREATE INDEX tightenings_tool ON tightenings (tool_serial, made_at) WHERE tool_serial <> '';
CREATE INDEX tightenings_controller ON tightenings (controller, made_at);
CREATE INDEX tightenings_pset ON tightenings (station, pset, made_at);
CREATE INDEX tightenings_nok ON tightenings (station, made_at) WHERE result = 'NOK';

-- keiline_ensure_partitions now makes the tightenings' months too.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION keiline_ensure_partitions(p_from timestamptz, p_to timestamptz) RETURNS int
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
        FOREACH t IN ARRAY ARRAY['event_log', 'station_visits', 'installed_parts', 'joints', 'test_results', 'tightenings'] LOOP
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

-- The months the record already has get their tightenings partitions.
SELECT keiline_ensure_partitions(min(month)::timestamp AT TIME ZONE 'UTC', max(month)::timestamp AT TIME ZONE 'UTC')
    FROM trace_partitions WHERE parent = 'event_log' AND removed_at IS NULL;

REVOKE ALL ON tightenings FROM PUBLIC, keiline_writer, keiline_auditor;
GRANT SELECT, INSERT ON tightenings TO keiline_writer;
GRANT SELECT ON tightenings TO keiline_auditor;

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION keiline_ensure_partitions(p_from timestamptz, p_to timestamptz) RETURNS int
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
DELETE FROM trace_partitions WHERE parent = 'tightenings';
DROP TABLE tightenings;
