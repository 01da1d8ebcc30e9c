-- +goose Up

-- Statistical process control (issue 17): control limits a quality
-- engineer froze from a baseline window, per characteristic, versioned and
-- append-only. A characteristic is a joint's torque or angle, or a test's
-- value, at one station, by its joint or test name, for every car or for
-- one model (and variant). Limits are never edited or recomputed: a new
-- freeze is a new version, and the newest version is the one charts use.
CREATE TABLE spc_limits (
    limits_id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('torque', 'angle', 'test')),
    station       text        NOT NULL CHECK (station <> ''),
    name          text        NOT NULL CHECK (name <> ''),
    model         text        NOT NULL DEFAULT '',
    variant       text        NOT NULL DEFAULT '' CHECK (variant = '' OR model <> ''),
    version       int         NOT NULL CHECK (version >= 1),
    -- The chart: i-mr, xbar-r or xbar-s with its subgroup size; the lines
    -- themselves (spc.Limits as JSON: centre lines, control limits, sigma,
    -- the factor table and the baseline's first and last points).
    method        text        NOT NULL CHECK (method IN ('i-mr', 'xbar-r', 'xbar-s')),
    subgroup      int         NOT NULL CHECK (subgroup BETWEEN 1 AND 25),
    limits        jsonb       NOT NULL,
    -- The run rules the characteristic is checked with (spc.Rule ids).
    rules         text[]      NOT NULL,
    -- The baseline window [baseline_from, baseline_to) the engineer chose.
    baseline_from timestamptz NOT NULL,
    baseline_to   timestamptz NOT NULL CHECK (baseline_to > baseline_from),
    -- Who froze them: the signed-in user (signed_in) or, on a dashboard
    -- without sign-in, the name typed in the form, recorded as unverified.
    frozen_by     text        NOT NULL CHECK (frozen_by <> '' AND length(frozen_by) <= 200),
    signed_in     boolean     NOT NULL,
    frozen_at     timestamptz NOT NULL,
    reason        text        NOT NULL DEFAULT '' CHECK (length(reason) <= 2000),
    UNIQUE (kind, station, name, model, variant, version)
);

-- The same guard as the event log's: no UPDATE, DELETE or TRUNCATE, not
-- even by the owner.
CREATE TRIGGER spc_limits_no_update BEFORE UPDATE OR DELETE ON spc_limits
    FOR EACH ROW EXECUTE FUNCTION keiline_append_only();
CREATE TRIGGER spc_limits_no_truncate BEFORE TRUNCATE ON spc_limits
    FOR EACH STATEMENT EXECUTE FUNCTION keiline_append_only();

-- A characteristic's values in time order (ties by event and slot), from
-- the index alone (an index-only scan once autovacuum has marked the
-- pages all-visible): a year of one joint is read without touching the
-- joints' heap and without a sort.
CREATE INDEX joints_characteristic ON joints (station, joint, made_at, event_id, slot) INCLUDE (torque_nm, angle_deg, vin);
CREATE INDEX test_results_characteristic ON test_results (station, name, tested_at, event_id, slot) INCLUDE (value, vin, low, high);

-- Least privilege: the web server (the engineer's freeze form) appends
-- and reads limits; the auditor reads them; nobody else touches them.
REVOKE ALL ON spc_limits FROM PUBLIC, keiline_writer, keiline_auditor, keiline_web;
GRANT SELECT, INSERT ON spc_limits TO keiline_web;
GRANT SELECT ON spc_limits TO keiline_auditor;

-- +goose Down
DROP INDEX test_results_characteristic;
DROP INDEX joints_characteristic;
DROP TABLE spc_limits;
