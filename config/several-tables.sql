-- rekindle's interaction log for a business whose data lives in several tables (here a bike
-- shop's orders, support_tickets and cancellations, with times as Unix seconds). rekindle finds
-- new interactions by rowid, so they must go into one table whose rowid grows with every new
-- row: these triggers feed it as your program writes, inside its own transactions. Adapt the
-- names to your tables, then run this once: sqlite3 your.sqlite < several-tables.sql
-- (tests/own_log.rs runs this very file against a bike shop's tables).

CREATE TABLE IF NOT EXISTS interactions (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    at          NOT NULL,          -- as your tables hold it: ISO-8601 text or Unix seconds
    kind        TEXT NOT NULL,
    sentiment   REAL,
    channel     TEXT,
    note        TEXT,
    source      TEXT,              -- which table, and its row: each row is fed once
    source_id   INTEGER,
    UNIQUE (source, source_id)
);
CREATE INDEX IF NOT EXISTS interactions_customer_at ON interactions(customer_id, at);
CREATE INDEX IF NOT EXISTS interactions_kind_at ON interactions(kind, at);

-- A ticket rated 1 or 2 (of 5) is a complaint; its comment is the customer's own words.
CREATE TRIGGER IF NOT EXISTS tickets_to_interactions AFTER INSERT ON support_tickets BEGIN
  INSERT INTO interactions (customer_id, at, kind, sentiment, channel, note, source, source_id)
  VALUES (NEW.client_id, NEW.opened_ts,
          CASE WHEN NEW.satisfaction <= 2 THEN 'complaint' ELSE 'review' END,
          (NEW.satisfaction - 3) / 2.0, 'email', NEW.comment, 'tickets', NEW.ticket_id);
END;
CREATE TRIGGER IF NOT EXISTS orders_to_interactions AFTER INSERT ON orders BEGIN
  INSERT INTO interactions (customer_id, at, kind, channel, source, source_id)
  VALUES (NEW.client_id, NEW.placed_ts, 'purchase', 'shop', 'orders', NEW.order_id);
END;
CREATE TRIGGER IF NOT EXISTS cancellations_to_interactions AFTER INSERT ON cancellations BEGIN
  INSERT INTO interactions (customer_id, at, kind, channel, source, source_id)
  VALUES (NEW.client_id, NEW.cancelled_ts, 'cancellation', 'web', 'cancellations',
          NEW.cancellation_id);
END;

-- Once: the rows already there, oldest first (run again, it adds nothing twice).
INSERT OR IGNORE INTO interactions
    (customer_id, at, kind, sentiment, channel, note, source, source_id)
  SELECT * FROM (
    SELECT client_id, placed_ts, 'purchase', NULL, 'shop', NULL, 'orders', order_id FROM orders
    UNION ALL
    SELECT client_id, opened_ts, CASE WHEN satisfaction <= 2 THEN 'complaint' ELSE 'review' END,
           (satisfaction - 3) / 2.0, 'email', comment, 'tickets', ticket_id FROM support_tickets
    UNION ALL
    SELECT client_id, cancelled_ts, 'cancellation', NULL, 'web', NULL, 'cancellations',
           cancellation_id FROM cancellations)
  ORDER BY 2;
