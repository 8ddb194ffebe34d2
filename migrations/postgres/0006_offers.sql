-- Offers and e-coupons: an offer made from a template and granted to members; each grant is a coupon with
-- its own code, Apple coupon pass and Google OfferObject.

CREATE TABLE offers (
    program TEXT NOT NULL,
    offer_id TEXT NOT NULL,
    -- the folder under templates/<program>/offers/
    template TEXT NOT NULL,
    -- unix seconds: the validity window [valid_from, valid_until)
    valid_from BIGINT NOT NULL,
    valid_until BIGINT NOT NULL,
    -- coupons each member gets from one grant
    per_member BIGINT NOT NULL,
    -- at most this many coupons in all (NULL: no limit)
    quota BIGINT,
    -- unix seconds (NULL: active)
    withdrawn_at BIGINT,
    -- unix seconds the open coupons were marked expired (NULL: not yet)
    expired_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (program, offer_id)
);
-- The expiry sweep looks for offers whose window closed and whose coupons are not yet marked.
CREATE INDEX offers_open ON offers (valid_until);

CREATE TABLE coupons (
    -- random and unguessable: also the coupon's public link id
    coupon_id TEXT PRIMARY KEY,
    program TEXT NOT NULL,
    offer_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    -- 1..per_member
    slot BIGINT NOT NULL,
    -- what the barcode carries and staff redeem: random, never a counter
    code TEXT NOT NULL UNIQUE,
    -- active, redeemed, expired, withdrawn
    state TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    redeemed_at BIGINT,
    redeemed_location TEXT,
    -- the staff credential's fingerprint, never the token
    redeemed_staff TEXT,
    -- the Apple coupon pass: serial and token never change; tag and Last-Modified move on every change
    serial_number TEXT NOT NULL UNIQUE,
    authentication_token TEXT NOT NULL,
    pass_type_id TEXT NOT NULL,
    team_id TEXT NOT NULL,
    update_tag BIGINT NOT NULL,
    modified_at BIGINT NOT NULL,
    -- Google: the OfferObject's state Google last accepted ('' = not inserted), and the last attempt
    google_state TEXT NOT NULL DEFAULT '',
    google_linked INTEGER NOT NULL DEFAULT 0,
    -- the message posted on the loyalty object: TEXT_AND_NOTIFY or TEXT ('' = none yet)
    google_message TEXT NOT NULL DEFAULT '',
    google_last_result TEXT,
    UNIQUE (program, offer_id, member_id, slot),
    FOREIGN KEY (program, offer_id) REFERENCES offers (program, offer_id)
);
CREATE INDEX coupons_member ON coupons (program, member_id, granted_at);
CREATE INDEX coupons_offer_state ON coupons (program, offer_id, state);
-- Redemptions by time (the console's counts per day).
CREATE INDEX coupons_redeemed ON coupons (redeemed_at);
CREATE INDEX coupons_update_tag ON coupons (update_tag);

-- The loyalty card shows the latest offer granted (the offer template's title) on its back.
ALTER TABLE members ADD COLUMN latest_offer TEXT;

-- The Google offers outbox: one job per coupon's OfferObject (class upsert, object, link, message).
CREATE TABLE offer_jobs (
    program TEXT NOT NULL,
    coupon_id TEXT NOT NULL,
    enqueued_at BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (program, coupon_id)
);
CREATE INDEX offer_jobs_due ON offer_jobs (not_before, enqueued_at);
