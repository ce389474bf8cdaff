-- Why an order is in its status (the saga's cancellation reason, say). Portable SQL.
ALTER TABLE orders ADD COLUMN status_reason TEXT;
