-- +goose Up

-- A gate decision is the gate's own (kind gate: the cycle at the quality
-- gate, released only with no open hold) or a later release (kind release):
-- when the holds that made the gate block a car are closed afterwards — a
-- rework event that reached the tracker after the gate's, or rework after
-- the gate — the closing event records the car's release. Decisions stay
-- append-only: a block is never changed, a release follows it.
ALTER TABLE gate_decisions ADD COLUMN kind text NOT NULL DEFAULT 'gate' CHECK (kind IN ('gate', 'release'));

-- +goose Down
ALTER TABLE gate_decisions DROP COLUMN kind;
