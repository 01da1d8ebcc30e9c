-- +goose Up

-- Issue 13: people in the record. Every human decision on the line (a
-- defect seen, a repair, a signed release, an andon pulled or cleared, a
-- stop classified, a manual hold placed or released) is an event of kind
-- human in the hash-chained log; human_actions is its row, derived by the
-- rules like a visit from a cycle, so that "who released it, when, and
-- why" is one indexed question. The holds it opens and closes are in
-- holds (kinds defect, inspection, manual). Rows are never updated or
-- deleted: a correction is a new event citing the old one.
CREATE TABLE human_actions (
    event_id    text        PRIMARY KEY,
    action      text        NOT NULL CHECK (action IN ('defect', 'repair', 'release', 'andon_pull', 'andon_clear',
                                                       'classify', 'hold', 'unhold', 'correct')),
    station     text        NOT NULL,
    vin         text        NOT NULL, -- '' when the action is about no car
    user_id     bigint      NOT NULL,
    user_name   text        NOT NULL,
    role        text        NOT NULL,
    reason      text        NOT NULL,
    code        text        NOT NULL,
    zone        text        NOT NULL,
    severity    text        NOT NULL,
    text        text        NOT NULL,
    lot         text        NOT NULL,
    meaning     text        NOT NULL, -- the signature's meaning; '' when not signed
    cites       text        NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX human_actions_vin ON human_actions (vin, occurred_at) WHERE vin <> '';
CREATE INDEX human_actions_station ON human_actions (station, occurred_at);
CREATE INDEX human_actions_user ON human_actions (user_name, occurred_at);
-- The dashboard's andon calls pulled at terminals: the latest per station.
CREATE INDEX human_actions_andon ON human_actions (station, occurred_at DESC) WHERE action IN ('andon_pull', 'andon_clear');

REVOKE ALL ON human_actions FROM keiline_writer, keiline_auditor;
GRANT SELECT, INSERT ON human_actions TO keiline_writer;
GRANT SELECT ON human_actions TO keiline_auditor;

-- +goose Down
DROP TABLE human_actions;
