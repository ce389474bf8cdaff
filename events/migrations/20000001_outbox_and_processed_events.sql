-- The transactional outbox and the processed-event record, shared by every service.
-- Portable SQL (SQLite and PostgreSQL). Versioned apart from each service's own migrations.

-- Events written in the same transaction as the state change; the relay publishes them in id
-- order (UUIDv7, so creation order) and sets sent_at once the broker has confirmed.
CREATE TABLE outbox (
    id          TEXT   PRIMARY KEY NOT NULL,
    topic       TEXT   NOT NULL,
    event_key   TEXT   NOT NULL,
    payload     TEXT   NOT NULL,
    traceparent TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    sent_at     BIGINT
);
CREATE INDEX outbox_sent_at_id ON outbox (sent_at, id);

-- Every consumed event whose effect is stored, recorded in the effect's own transaction, so a
-- redelivered event is recognised and skipped.
CREATE TABLE processed_events (
    event_id     TEXT   PRIMARY KEY NOT NULL,
    topic        TEXT   NOT NULL,
    processed_at BIGINT NOT NULL
);
