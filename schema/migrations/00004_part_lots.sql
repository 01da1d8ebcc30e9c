-- +goose Up

-- Every supplier lot once, with the span of time its parts were installed
-- in: a lot question reads only the months of that span, however long the
-- history. The tracker widens the span as it records parts (SaveVisits);
-- keiline audit verify checks that it covers every part installed.
CREATE TABLE IF NOT EXISTS part_lots (
    lot         text        NOT NULL,
    part_number text        NOT NULL,
    supplier    text        NOT NULL,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    PRIMARY KEY (lot, part_number, supplier)
);
INSERT INTO part_lots (lot, part_number, supplier, first_at, last_at)
    SELECT lot, part_number, supplier, min(installed_at), max(installed_at) FROM installed_parts GROUP BY 1, 2, 3
    ON CONFLICT (lot, part_number, supplier) DO UPDATE SET
        first_at = least(part_lots.first_at, EXCLUDED.first_at), last_at = greatest(part_lots.last_at, EXCLUDED.last_at);

REVOKE ALL ON part_lots FROM keiline_writer, keiline_auditor;
GRANT SELECT, INSERT, UPDATE ON part_lots TO keiline_writer;
GRANT SELECT ON part_lots TO keiline_auditor;

-- +goose Down
DROP TABLE part_lots;
