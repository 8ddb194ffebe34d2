-- Apple's web service, the ledger webhook and the push outbox.

-- A device holding a pass: (device library identifier, pass type, serial) with its push token, upserted.
CREATE TABLE registrations (
    device_library_id TEXT NOT NULL,
    pass_type_id TEXT NOT NULL,
    serial_number TEXT NOT NULL,
    push_token TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    -- the last push attempt to this registration's token
    last_push_at BIGINT,
    last_push_result TEXT,
    last_push_reason TEXT,
    PRIMARY KEY (device_library_id, pass_type_id, serial_number)
);
CREATE INDEX registrations_serial ON registrations (serial_number);
CREATE INDEX registrations_token ON registrations (pass_type_id, push_token);

-- Ledger event ids seen (kept at least 30 days), so an event applies at most once.
CREATE TABLE ledger_events (
    event_id TEXT PRIMARY KEY,
    member_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    status TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX ledger_events_received ON ledger_events (received_at);

-- The outbox: one row per push token owed a push, written in the transaction of the change it announces.
-- Several changes waiting together are one row (one push); `generation` moves when a change arrives while
-- a push is in flight, so that push does not clear the row and the device hears of the later change too.
CREATE TABLE push_jobs (
    pass_type_id TEXT NOT NULL,
    push_token TEXT NOT NULL,
    -- unix milliseconds of the oldest change waiting (webhook-to-push latency)
    enqueued_at BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- unix milliseconds: not sent before (backoff), and leased to a worker until
    not_before BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (pass_type_id, push_token)
);
CREATE INDEX push_jobs_due ON push_jobs (not_before);

-- Bounded history of push attempts (newest kept), for "why didn't my pass update".
CREATE TABLE push_attempts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    push_token TEXT NOT NULL,
    attempted_at BIGINT NOT NULL,
    result TEXT NOT NULL,
    status INTEGER,
    reason TEXT
);

-- Small shared state, e.g. APNs refusing our credentials (403), which stops pushes until fixed.
CREATE TABLE service_state (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
