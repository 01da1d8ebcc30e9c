-- +goose Up

-- Issue 11: the agents' alarms (event kind alarm: a cycle an agent read but
-- would not acknowledge, and the like), raised and cleared per station,
-- and each station's current alarm next to its state.
CREATE TABLE alarms (
    event_id    text        PRIMARY KEY,
    station     text        NOT NULL,
    counter     bigint      NOT NULL,
    active      boolean     NOT NULL,
    code        text        NOT NULL,
    text        text        NOT NULL,
    cycle       bigint      NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX alarms_station ON alarms (station, occurred_at);

-- The station's current alarm: the newest by the agent's counter; an empty
-- code when it was cleared.
ALTER TABLE station_status ADD COLUMN alarm_counter bigint NOT NULL DEFAULT 0;
ALTER TABLE station_status ADD COLUMN alarm_code text NOT NULL DEFAULT '';
ALTER TABLE station_status ADD COLUMN alarm_text text NOT NULL DEFAULT '';
ALTER TABLE station_status ADD COLUMN alarm_cycle bigint NOT NULL DEFAULT 0;
ALTER TABLE station_status ADD COLUMN alarm_at timestamptz;

REVOKE ALL ON alarms FROM keiline_writer, keiline_auditor;
GRANT SELECT, INSERT ON alarms TO keiline_writer;
GRANT SELECT ON alarms TO keiline_auditor;

-- +goose Down
ALTER TABLE station_status DROP COLUMN alarm_at, DROP COLUMN alarm_cycle, DROP COLUMN alarm_text,
    DROP COLUMN alarm_code, DROP COLUMN alarm_counter;
DROP TABLE alarms;
