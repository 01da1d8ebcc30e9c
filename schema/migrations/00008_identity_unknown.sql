-- +goose Up

-- Issue 11: a value keiline could not read holds the car; car identity by
-- body number.

-- A hold of kind unknown waits for one joint, test or part of the cycle
-- that opened it (its kind, name and slot): a later cycle of the car that
-- reports the item with a known value closes it. One cycle may so open
-- several holds of one kind at one station, one per item.
ALTER TABLE holds ADD COLUMN item_kind text NOT NULL DEFAULT '';
ALTER TABLE holds ADD COLUMN item_name text NOT NULL DEFAULT '';
ALTER TABLE holds ADD COLUMN item_slot int NOT NULL DEFAULT 0;
ALTER TABLE holds DROP CONSTRAINT holds_opened_event_id_kind_station_key;
ALTER TABLE holds ADD CONSTRAINT holds_opened_item_key UNIQUE (opened_event_id, kind, station, item_kind, item_slot);

-- Every (body number, VIN) pair a cycle gave, once, with the first event
-- that gave it.
CREATE TABLE car_ids (
    body      text        NOT NULL,
    vin       text        NOT NULL,
    event_id  text        NOT NULL,
    paired_at timestamptz NOT NULL,
    PRIMARY KEY (body, vin)
);
CREATE INDEX car_ids_vin ON car_ids (vin);

-- Cycles that gave only a body number under the line's default identity
-- policy (vin): in the event log from the start, filed under a car (vin)
-- once a cycle pairs the body number with a VIN (resolved_event_id).
CREATE TABLE pending_cycles (
    event_id          text        PRIMARY KEY,
    body              text        NOT NULL,
    station           text        NOT NULL,
    occurred_at       timestamptz NOT NULL,
    vin               text        NOT NULL DEFAULT '',
    resolved_event_id text,
    resolved_at       timestamptz,
    CHECK ((resolved_event_id IS NULL) = (resolved_at IS NULL) AND (resolved_event_id IS NULL) = (vin = ''))
);
CREATE INDEX pending_cycles_open ON pending_cycles (body) WHERE resolved_event_id IS NULL;

-- The identity policy the line's tracker runs under (event.IdentityPolicy):
-- the audit files each cycle under the car the tracker did.
ALTER TABLE trace_settings ADD COLUMN identity_policy text NOT NULL DEFAULT 'vin'
    CHECK (identity_policy IN ('vin', 'body-number', 'any'));

REVOKE ALL ON car_ids, pending_cycles FROM keiline_writer, keiline_auditor;
GRANT SELECT, INSERT ON car_ids TO keiline_writer;
GRANT SELECT, INSERT, UPDATE ON pending_cycles TO keiline_writer;
GRANT UPDATE (identity_policy) ON trace_settings TO keiline_writer;
GRANT SELECT ON car_ids, pending_cycles TO keiline_auditor;

-- +goose Down
REVOKE UPDATE (identity_policy) ON trace_settings FROM keiline_writer;
ALTER TABLE trace_settings DROP COLUMN identity_policy;
DROP TABLE pending_cycles, car_ids;
ALTER TABLE holds DROP CONSTRAINT holds_opened_item_key;
ALTER TABLE holds ADD CONSTRAINT holds_opened_event_id_kind_station_key UNIQUE (opened_event_id, kind, station);
ALTER TABLE holds DROP COLUMN item_slot, DROP COLUMN item_name, DROP COLUMN item_kind;
