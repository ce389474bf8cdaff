//! A bounded cache of parsed GraphQL documents, keyed by the query text.
//!
//! Parsing is the largest single cost of a cheap read at the gateway (about a third of its
//! instructions for `product(id)`, callgrind), and clients send the same few query texts over
//! and over with different variables. A request whose text was parsed before gets a copy of
//! that document; async-graphql then validates and executes it as usual (validation depends on
//! the variables, so it is not cached). Texts that do not parse are not cached: they are parsed
//! again by the schema, which reports the error.

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex, PoisonError},
};

use async_graphql::parser::types::ExecutableDocument;
use lru::LruCache;

/// How many documents are kept; the least recently used goes first.
const CAPACITY: NonZeroUsize = NonZeroUsize::new(1024).expect("not zero");

/// Longer query texts are parsed every time, so that the cache stays small (at most
/// `CAPACITY` times this, plus the documents) whatever clients send.
const MAX_QUERY_BYTES: usize = 4096;

/// The documents of the query texts seen most recently.
#[derive(Debug)]
pub struct DocumentCache {
    documents: Mutex<LruCache<String, Arc<ExecutableDocument>>>,
}

impl Default for DocumentCache {
    fn default() -> Self {
        Self { documents: Mutex::new(LruCache::new(CAPACITY)) }
    }
}

impl DocumentCache {
    /// Gives `request` the parsed document of its query text: a copy of the cached one, or the
    /// one parsed now (then cached).
    pub fn prepare(&self, request: &mut async_graphql::Request) {
        if request.query.len() > MAX_QUERY_BYTES {
            return;
        }
        let cached = self.lock().get(&request.query).cloned();
        match cached {
            // The copy is made outside the lock.
            Some(document) => request.set_parsed_query(ExecutableDocument::clone(&document)),
            None => {
                if let Ok(document) = request.parsed_query() {
                    let document = Arc::new(document.clone());
                    self.lock().put(request.query.clone(), document);
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Arc<ExecutableDocument>>> {
        self.documents.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many documents are cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn double(&self, value: i32) -> i32 {
            value * 2
        }
    }

    #[tokio::test]
    async fn a_cached_document_answers_like_a_fresh_parse_with_each_requests_variables() {
        let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
        let cache = DocumentCache::default();
        let query = "query($v: Int!) { double(value: $v) }";
        for value in [1, 2, 3] {
            let mut request = async_graphql::Request::new(query)
                .variables(async_graphql::Variables::from_json(serde_json::json!({ "v": value })));
            cache.prepare(&mut request);
            let response = schema.execute(request).await;
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            assert_eq!(response.data.into_json().expect("JSON"), serde_json::json!({ "double": value * 2 }));
        }
        assert_eq!(cache.len(), 1, "one text, one document");
    }

    #[tokio::test]
    async fn texts_that_do_not_parse_or_are_long_are_not_cached_and_still_get_their_error() {
        let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
        let cache = DocumentCache::default();
        let mut broken = async_graphql::Request::new("{ double(value: ");
        cache.prepare(&mut broken);
        let response = schema.execute(broken).await;
        assert!(!response.errors.is_empty());
        let long = format!("{{ double(value: 1) }}{}", " ".repeat(MAX_QUERY_BYTES));
        let mut request = async_graphql::Request::new(long);
        cache.prepare(&mut request);
        assert!(schema.execute(request).await.errors.is_empty());
        assert_eq!(cache.len(), 0);
    }
}
