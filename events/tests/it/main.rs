//! The events library against real processes: a PostgreSQL database and the embedded broker.

mod relay;
