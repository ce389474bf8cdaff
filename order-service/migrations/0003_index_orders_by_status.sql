-- The saga's backpressure reads the PENDING orders' count and oldest creation time several
-- times a second; this index keeps that a range scan, however many orders there are.
CREATE INDEX orders_status_created_at ON orders (status, created_at);
