-- +goose Up

-- Orders to cars (issue 6): the planner's orders, the build sequence the
-- sequencer makes of them with a VIN per car, and the JIS broadcasts sent
-- to suppliers as cars pass the broadcast point.

-- Every order once. status: open (waiting to be sequenced), sequenced (in
-- build_sequence), cancelled.
CREATE TABLE orders (
    order_id    text        PRIMARY KEY,
    model       text        NOT NULL,
    variant     text        NOT NULL,
    colour      text        NOT NULL,
    options     text[]      NOT NULL DEFAULT '{}',
    due         timestamptz,
    priority    integer     NOT NULL DEFAULT 0,
    status      text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'sequenced', 'cancelled')),
    source      text        NOT NULL,           -- the file imported, or "api"
    imported_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_open ON orders (due NULLS LAST, priority DESC, order_id) WHERE status = 'open';

-- One row per sequencing run.
CREATE TABLE sequence_plans (
    plan_id        bigserial   PRIMARY KEY,
    planned_at     timestamptz NOT NULL DEFAULT now(),
    cars           integer     NOT NULL,
    first_seq      bigint      NOT NULL,
    violations     integer     NOT NULL,  -- W over every ratio rule
    excess         integer     NOT NULL,  -- E
    batch_excess   integer     NOT NULL,
    colour_changes integer     NOT NULL,
    rules          jsonb       NOT NULL,  -- the rules and per-rule results
    seconds        double precision NOT NULL
);

-- The build sequence: seq is the line's build order (1, 2, …); the VIN is
-- assigned with it (its serial is seq) and stamped when the car is framed.
CREATE TABLE build_sequence (
    seq        bigint      PRIMARY KEY CHECK (seq > 0),
    order_id   text        NOT NULL UNIQUE REFERENCES orders (order_id),
    vin        text        NOT NULL UNIQUE,
    model      text        NOT NULL,
    variant    text        NOT NULL,
    colour     text        NOT NULL,
    options    text[]      NOT NULL DEFAULT '{}',
    plan_id    bigint      NOT NULL REFERENCES sequence_plans (plan_id),
    downloaded_at timestamptz           -- first written to the framing PLC's manifest
);

-- JIS broadcasts: one per supplier and car, numbered per supplier in the
-- order cars passed the broadcast point. Written with the broadcast point's
-- event (same transaction); published_at is set once JetStream has it.
CREATE TABLE jis_broadcasts (
    supplier     text        NOT NULL,
    seq          bigint      NOT NULL CHECK (seq > 0),
    vin          text        NOT NULL,
    part_number  text        NOT NULL,
    part_variant text        NOT NULL,
    install      text        NOT NULL,  -- station that installs the part
    event_id     text        NOT NULL,  -- the broadcast point's event
    passed_at    timestamptz NOT NULL,  -- PLC time the car passed the point
    published_at timestamptz,
    PRIMARY KEY (supplier, seq),
    UNIQUE (supplier, vin)
);
CREATE INDEX jis_unpublished ON jis_broadcasts (supplier, seq) WHERE published_at IS NULL;

REVOKE ALL ON orders, sequence_plans, build_sequence, jis_broadcasts FROM keiline_writer, keiline_auditor;
GRANT SELECT, INSERT, UPDATE ON orders, sequence_plans, build_sequence, jis_broadcasts TO keiline_writer;
GRANT USAGE ON SEQUENCE sequence_plans_plan_id_seq TO keiline_writer;
GRANT SELECT ON orders, sequence_plans, build_sequence, jis_broadcasts TO keiline_auditor;

-- +goose Down
DROP TABLE jis_broadcasts;
DROP TABLE build_sequence;
DROP TABLE sequence_plans;
DROP TABLE orders;
