-- The order saga's side in product-service. Portable SQL (SQLite and PostgreSQL).

-- What each order took from stock, so a cancellation can give exactly that back, once.
CREATE TABLE reservations (
    order_id    TEXT   NOT NULL,
    product_id  TEXT   NOT NULL,
    quantity    BIGINT NOT NULL CHECK (quantity > 0),
    reserved_at BIGINT NOT NULL,
    released_at BIGINT,
    PRIMARY KEY (order_id, product_id)
);

-- Orders known to be cancelled: if their order.created arrives after the cancellation, nothing
-- is reserved for them.
CREATE TABLE cancelled_orders (
    order_id     TEXT   PRIMARY KEY NOT NULL,
    cancelled_at BIGINT NOT NULL
);
