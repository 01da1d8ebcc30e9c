-- +goose Up

-- Issue 17, rules that act: the tracker checks each new value of a
-- characteristic with frozen limits against its run rules, so it reads
-- the limits (it never writes them).
GRANT SELECT ON spc_limits TO keiline_writer;

-- A rule break (event kind spc) holds every car made since the last good
-- point: one event opens holds on several cars, so a hold is one per
-- opening event, kind, station, item and car.
ALTER TABLE holds DROP CONSTRAINT holds_opened_item_key;
ALTER TABLE holds ADD CONSTRAINT holds_opened_item_key UNIQUE (opened_event_id, kind, station, item_kind, item_slot, vin);

-- +goose Down
ALTER TABLE holds DROP CONSTRAINT holds_opened_item_key;
ALTER TABLE holds ADD CONSTRAINT holds_opened_item_key UNIQUE (opened_event_id, kind, station, item_kind, item_slot);
REVOKE SELECT ON spc_limits FROM keiline_writer;
