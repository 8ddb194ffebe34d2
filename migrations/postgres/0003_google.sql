-- Google Wallet: one loyalty object per member, kept current through its own outbox.

-- What tessera knows of each member's Google object.
CREATE TABLE google_objects (
    program TEXT NOT NULL,
    member_id TEXT NOT NULL,
    -- unix ms when the object was inserted through the REST API (0: not yet)
    inserted_at BIGINT NOT NULL DEFAULT 0,
    -- the pass update tag, points and tier of the state Google last accepted
    synced_tag BIGINT NOT NULL DEFAULT 0,
    synced_points BIGINT,
    synced_tier TEXT,
    -- unix seconds of the phone notifications asked for in the last 24 hours, comma-separated
    notified_at TEXT NOT NULL DEFAULT '',
    -- from save/delete callbacks
    saved INTEGER NOT NULL DEFAULT 0,
    saved_changed_at BIGINT,
    -- the last REST attempt: unix seconds and what came of it (current, retrying, failed: ..., forbidden: ...)
    last_attempt_at BIGINT,
    last_result TEXT,
    PRIMARY KEY (program, member_id)
);

-- One job per member's object, coalesced like push jobs: however many changes wait, one request sends the
-- latest state.
CREATE TABLE google_jobs (
    program TEXT NOT NULL,
    member_id TEXT NOT NULL,
    -- unix ms of the oldest change waiting
    enqueued_at BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (program, member_id)
);
CREATE INDEX google_jobs_due ON google_jobs (not_before, enqueued_at);

-- Callback nonces already seen (Google retries callbacks).
CREATE TABLE google_callback_nonces (
    nonce TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
CREATE INDEX google_callback_nonces_received ON google_callback_nonces (received_at);

-- Request rate limits shared by every instance (GCRA: the theoretical arrival time of the next request, unix µs).
CREATE TABLE rate_limits (
    name TEXT PRIMARY KEY,
    next_at_us BIGINT NOT NULL
);
