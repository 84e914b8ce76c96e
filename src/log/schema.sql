-- The canonical interaction-log schema rekindle reads (read-only).
-- A business whose own tables look different creates VIEWs with these names and columns.
CREATE TABLE IF NOT EXISTS customers (
    id          INTEGER PRIMARY KEY,      -- or TEXT: any stable, unique id
    email       TEXT,                     -- where notes go; invalid addresses are skipped
    name        TEXT,                     -- full name; NULL or empty gets a friendly greeting
    timezone    TEXT,                     -- IANA name, e.g. 'Europe/Paris'; NULL = config default
    created_at  TEXT NOT NULL,            -- ISO-8601, when they became a customer
    status      TEXT NOT NULL DEFAULT 'active', -- 'active' or 'departed' (others allowed)
    opted_out   INTEGER NOT NULL DEFAULT 0,     -- 1 = never write to this customer
    attributes  TEXT                      -- JSON object: affinity, favourite_product, pet, ...
);
CREATE TABLE IF NOT EXISTS interactions (
    id          INTEGER PRIMARY KEY,      -- increasing: newer rows have larger ids
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    at          TEXT NOT NULL,            -- ISO-8601 timestamp (see README for accepted forms)
    kind        TEXT NOT NULL,            -- purchase, invoice, complaint, resolution, review, cancellation, ...
    sentiment   REAL,                     -- -1.0 (angry) .. 1.0 (delighted); NULL = unknown
    channel     TEXT,                     -- email, phone, shop, web, ...
    note        TEXT                      -- free text in the customer's own words, if any
);
CREATE INDEX IF NOT EXISTS interactions_customer_at ON interactions(customer_id, at);
CREATE INDEX IF NOT EXISTS interactions_kind_at ON interactions(kind, at);
