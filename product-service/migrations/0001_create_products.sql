-- The product catalog. Portable SQL: runs unchanged on SQLite and PostgreSQL.
-- Money is integer cents; timestamps are Unix milliseconds. Stock can never go negative.
CREATE TABLE products (
    id          TEXT   PRIMARY KEY NOT NULL,
    name        TEXT   NOT NULL,
    description TEXT   NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    stock       BIGINT NOT NULL CHECK (stock >= 0),
    category    TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Listing pages through products in creation order, overall or within one category.
CREATE INDEX products_created_at_id ON products (created_at, id);
CREATE INDEX products_category_created_at_id ON products (category, created_at, id);
