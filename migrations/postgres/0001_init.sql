-- The PostgreSQL schema, mirroring migrations/sqlite (same tables, columns and types): TEXT ids, BIGINT unix
-- seconds, INTEGER 0/1 flags, so one set of statements and row decoders serves both.

-- Secrets generated on first start (admin token, webhook secret, staff token), shared by every instance.
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Monotonic counters. `pass_update_tag` orders pass changes: it is bumped inside the transaction that
-- changes a pass, so the row lock makes tags follow commit order.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('pass_update_tag', 0);

CREATE TABLE members (
    program TEXT NOT NULL,
    member_id TEXT NOT NULL,
    -- random, unguessable id used in the member's links
    public_id TEXT NOT NULL UNIQUE,
    name TEXT,
    tier TEXT NOT NULL,
    points BIGINT NOT NULL,
    locale TEXT,
    attributes TEXT NOT NULL,
    retired INTEGER NOT NULL DEFAULT 0,
    -- highest ledger sequence applied (NULL: none yet)
    ledger_sequence BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (program, member_id)
);

-- One Apple pass per member. serial_number and authentication_token never change once made.
CREATE TABLE apple_passes (
    serial_number TEXT PRIMARY KEY,
    program TEXT NOT NULL,
    member_id TEXT NOT NULL,
    pass_type_id TEXT NOT NULL,
    team_id TEXT NOT NULL,
    authentication_token TEXT NOT NULL,
    voided INTEGER NOT NULL DEFAULT 0,
    update_tag BIGINT NOT NULL,
    -- unix seconds; Last-Modified. Moves to max(now, previous + 1) on every change.
    modified_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (program, member_id),
    FOREIGN KEY (program, member_id) REFERENCES members (program, member_id)
);
CREATE INDEX apple_passes_update_tag ON apple_passes (update_tag);
