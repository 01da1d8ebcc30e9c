-- +goose Up

-- People and machines on the web side (issue 13): users and their roles,
-- server-side sessions, API tokens with scopes, and failed sign-ins.
-- Secrets are never stored: a password only as its argon2id hash (PHC
-- string), a session id and an API token only as their sha256.

-- The web server signs people in as keiline_web: it reads users and
-- tokens, keeps sessions, counts failed sign-ins and changes a user's own
-- password, and nothing else — it cannot create users, change roles or
-- mint tokens (the owner does, through keiline users|tokens), and it
-- cannot read or write the record. Roles are cluster-wide: another
-- database's migration may make it at the same moment (see 00003).
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'keiline_web') THEN
        BEGIN
            CREATE ROLE keiline_web LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'keiline_web' AND rolcanlogin) THEN
        BEGIN
            ALTER ROLE keiline_web LOGIN;
        EXCEPTION WHEN others THEN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'keiline_web' AND rolcanlogin) THEN
                RAISE;
            END IF;
        END;
    END IF;
END
$$;
-- +goose StatementEnd

-- A person who signs in. Users are disabled, never deleted, so the record
-- can always say who did what.
CREATE TABLE users (
    user_id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    display_name        text        NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    password_hash       text        NOT NULL, -- $argon2id$v=19$m=…,t=…,p=…$salt$hash
    password_changed_at timestamptz NOT NULL,
    disabled            boolean     NOT NULL DEFAULT false,
    failed_logins       integer     NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until        timestamptz,
    last_login_at       timestamptz,
    created_at          timestamptz NOT NULL
);

-- What a user may do; a user may have several roles.
CREATE TABLE user_roles (
    user_id bigint NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    role    text   NOT NULL CHECK (role IN ('operator', 'team_leader', 'supervisor', 'quality_inspector',
                                            'planner', 'auditor', 'admin')),
    PRIMARY KEY (user_id, role)
);

-- A machine client's credential (an ERP's orders import, a line-side TV).
CREATE TABLE api_tokens (
    token_id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash   bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    name         text        NOT NULL CHECK (name <> '' AND length(name) <= 100),
    scopes       text[]      NOT NULL CHECK (cardinality(scopes) > 0),
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

-- A signed-in browser: a user's, or a kiosk's (a TV showing the dashboard
-- with a token's read-only scopes). Idle and absolute expiry are the web
-- server's settings, checked against last_seen_at and created_at.
CREATE TABLE sessions (
    session_hash bytea       PRIMARY KEY CHECK (length(session_hash) = 32),
    user_id      bigint      REFERENCES users (user_id) ON DELETE CASCADE,
    token_id     bigint      REFERENCES api_tokens (token_id) ON DELETE CASCADE,
    client       text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    CHECK ((user_id IS NULL) <> (token_id IS NULL))
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX sessions_token ON sessions (token_id) WHERE token_id IS NOT NULL;
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);

-- Every refused password: at sign-in, at an e-signature, at a password
-- change. The name typed is never kept (it may be a password typed in the
-- wrong field): an unknown name leaves user_id NULL.
CREATE TABLE login_failures (
    failure_id bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    user_id    bigint      REFERENCES users (user_id) ON DELETE CASCADE,
    client     text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('login', 'signature', 'password_change')),
    reason     text        NOT NULL CHECK (reason IN ('wrong_password', 'unknown_user', 'locked', 'disabled'))
);
CREATE INDEX login_failures_at ON login_failures (at);
CREATE INDEX login_failures_user ON login_failures (user_id, at) WHERE user_id IS NOT NULL;

-- 00003 gives the auditor SELECT on every new table by default: take it
-- back, and give it only what an audit of who-did-what needs — never a
-- password hash, a session or a token hash.
REVOKE ALL ON users, user_roles, api_tokens, sessions, login_failures FROM PUBLIC, keiline_writer, keiline_auditor, keiline_web;
GRANT SELECT (user_id, name, display_name, password_changed_at, disabled, failed_logins, locked_until, last_login_at, created_at)
    ON users TO keiline_auditor;
GRANT SELECT ON user_roles, login_failures TO keiline_auditor;
GRANT SELECT (token_id, name, scopes, created_by, created_at, expires_at, revoked_at, last_used_at) ON api_tokens TO keiline_auditor;

GRANT SELECT ON users, user_roles, api_tokens TO keiline_web;
GRANT UPDATE (password_hash, password_changed_at, failed_logins, locked_until, last_login_at) ON users TO keiline_web;
GRANT UPDATE (last_used_at) ON api_tokens TO keiline_web;
GRANT SELECT, INSERT, DELETE ON sessions TO keiline_web;
GRANT UPDATE (last_seen_at) ON sessions TO keiline_web;
GRANT SELECT, INSERT, DELETE ON login_failures TO keiline_web;

-- +goose Down
DROP TABLE login_failures;
DROP TABLE sessions;
DROP TABLE api_tokens;
DROP TABLE user_roles;
DROP TABLE users;
