//! A two-field query root for unit tests of what the gateway does around a schema (document
//! caching, operation metrics), without backends.

use async_graphql::Object;

/// `double(value)` answers; `fails` is a field error.
pub struct ToyQuery;

#[Object]
impl ToyQuery {
    async fn double(&self, value: i32) -> i32 {
        value * 2
    }

    async fn fails(&self) -> async_graphql::Result<i32> {
        Err("no".into())
    }
}
