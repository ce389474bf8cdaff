-- The relay's maintenance pass deletes processed-event ids past their retention; without an
-- index that is a scan of every id ever recorded, once a minute.
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
