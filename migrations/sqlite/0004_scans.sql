-- Staff scans of members' cards (the scan API and the staff page).
CREATE TABLE scans (
    id INTEGER PRIMARY KEY,
    program TEXT NOT NULL,
    member_id TEXT NOT NULL,
    -- unix milliseconds
    scanned_at BIGINT NOT NULL,
    -- which staff credential: a short fingerprint of the token, never the token
    staff TEXT NOT NULL,
    location TEXT
);
CREATE INDEX scans_member ON scans (program, member_id, scanned_at);
