-- Users. Portable SQL: runs unchanged on SQLite and PostgreSQL.
-- Timestamps are Unix milliseconds; emails are stored lower-cased, so UNIQUE is case-insensitive.
CREATE TABLE users (
    id            TEXT   PRIMARY KEY NOT NULL,
    name          TEXT   NOT NULL,
    email         TEXT   NOT NULL UNIQUE,
    password_hash TEXT   NOT NULL,
    role          TEXT   NOT NULL CHECK (role IN ('USER', 'ADMIN')),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Listing pages through users in creation order.
CREATE INDEX users_created_at_id ON users (created_at, id);
