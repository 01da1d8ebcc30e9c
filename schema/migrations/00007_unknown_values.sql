-- +goose Up
-- A value keiline could not read is unknown: NULL, never 0 and never OK.
-- The event says so with null (and names the tag in its bad values); the
-- record keeps the NULL. Partitions follow their partitioned table.
ALTER TABLE joints ALTER COLUMN torque_nm DROP NOT NULL;
ALTER TABLE joints ALTER COLUMN angle_deg DROP NOT NULL;
ALTER TABLE joints ALTER COLUMN ok DROP NOT NULL;
ALTER TABLE test_results ALTER COLUMN value DROP NOT NULL;
ALTER TABLE test_results ALTER COLUMN low DROP NOT NULL;
ALTER TABLE test_results ALTER COLUMN high DROP NOT NULL;
ALTER TABLE test_results ALTER COLUMN ok DROP NOT NULL;

-- +goose Down
ALTER TABLE joints ALTER COLUMN torque_nm SET NOT NULL;
ALTER TABLE joints ALTER COLUMN angle_deg SET NOT NULL;
ALTER TABLE joints ALTER COLUMN ok SET NOT NULL;
ALTER TABLE test_results ALTER COLUMN value SET NOT NULL;
ALTER TABLE test_results ALTER COLUMN low SET NOT NULL;
ALTER TABLE test_results ALTER COLUMN high SET NOT NULL;
ALTER TABLE test_results ALTER COLUMN ok SET NOT NULL;
