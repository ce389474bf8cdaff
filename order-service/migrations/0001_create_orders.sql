-- Orders and their items. Portable SQL: runs unchanged on SQLite and PostgreSQL.
-- Money is integer cents; timestamps are Unix milliseconds. Item prices are the catalog's at
-- the time of ordering, so later price changes never alter an order.
CREATE TABLE orders (
    id          TEXT   PRIMARY KEY NOT NULL,
    user_id     TEXT   NOT NULL,
    status      TEXT   NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'CANCELLED')),
    total_cents BIGINT NOT NULL CHECK (total_cents >= 0),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Newest-first listings, overall and per user.
CREATE INDEX orders_created_at_id ON orders (created_at, id);
CREATE INDEX orders_user_id_created_at_id ON orders (user_id, created_at, id);

CREATE TABLE order_items (
    order_id         TEXT   NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position         BIGINT NOT NULL,
    product_id       TEXT   NOT NULL,
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, position)
);
