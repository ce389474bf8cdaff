//! A bounded cache of parsed GraphQL documents, keyed by the query text, that also remembers
//! which of them passed the schema's full validation.
//!
//! Parsing and validation are the largest costs of a cheap read at the gateway (for
//! `product(id)` validation alone was ~49k of its ~212k instructions, callgrind), and clients
//! send the same few query texts over and over with different variables. A request whose text
//! was parsed before gets a copy of that document. Once a text has passed every validation
//! rule, later requests with it run on a schema that keeps only the checks that depend on the
//! request ([`async_graphql::ValidationMode::Fast`]: depth, complexity, fragment cycles): the
//! other rules look only at the text, so they would give the same answer again. The one rule
//! that also reads the variables' values (arguments of the right type) is covered by execution,
//! which parses every argument and refuses a wrong value with an error on its field. Texts that
//! do not parse are not cached: they are parsed again by the schema, which reports the error.

use std::{
    num::NonZeroUsize,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
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
    documents: Mutex<LruCache<String, Arc<CachedDocument>>>,
}

/// One cached text's document, and whether it has passed every validation rule.
#[derive(Debug)]
struct CachedDocument {
    document: ExecutableDocument,
    validated: AtomicBool,
}

/// Which validation a prepared request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Its text passed every rule before: the schema in fast validation mode may run it.
    Passed,
    /// Every rule must run.
    Full,
}

/// A request's document as the cache prepared it; [`Prepared::record`] takes note of the answer.
#[derive(Debug)]
pub struct Prepared {
    pub validation: Validation,
    /// The cache entry of a text not yet known to pass validation.
    pending: Option<Arc<CachedDocument>>,
}

impl Prepared {
    /// Records that the text passed every rule when `response` is not a request error (which
    /// is what a failed validation gives), so that later requests may skip them.
    pub fn record(&self, response: &async_graphql::Response) {
        if let Some(entry) = &self.pending
            && !crate::schema::is_request_error(response)
        {
            entry.validated.store(true, Ordering::Relaxed);
        }
    }
}

impl Default for DocumentCache {
    fn default() -> Self {
        Self { documents: Mutex::new(LruCache::new(CAPACITY)) }
    }
}

impl DocumentCache {
    /// Gives `request` the parsed document of its query text: a copy of the cached one, or the
    /// one parsed now (then cached); says which validation it still needs.
    pub fn prepare(&self, request: &mut async_graphql::Request) -> Prepared {
        let full = Prepared { validation: Validation::Full, pending: None };
        if request.query.len() > MAX_QUERY_BYTES {
            return full;
        }
        let cached = self.lock().get(&request.query).cloned();
        let entry = match cached {
            Some(entry) => {
                // The copy is made outside the lock.
                request.set_parsed_query(entry.document.clone());
                entry
            }
            None => match request.parsed_query() {
                Ok(document) => {
                    let entry =
                        Arc::new(CachedDocument { document: document.clone(), validated: AtomicBool::new(false) });
                    self.lock().put(request.query.clone(), Arc::clone(&entry));
                    entry
                }
                Err(_) => return full,
            },
        };
        if entry.validated.load(Ordering::Relaxed) {
            Prepared { validation: Validation::Passed, pending: None }
        } else {
            Prepared { validation: Validation::Full, pending: Some(entry) }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Arc<CachedDocument>>> {
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
    use async_graphql::{EmptyMutation, EmptySubscription, Schema, ValidationMode};
    use serde_json::{Value, json};

    use super::*;
    use crate::toy_schema::ToyQuery;

    /// The two schemas as the gateway builds them: the same but for validation.
    struct Schemas {
        strict: Schema<ToyQuery, EmptyMutation, EmptySubscription>,
        fast: Schema<ToyQuery, EmptyMutation, EmptySubscription>,
    }

    impl Schemas {
        fn new() -> Self {
            let build = |mode| Schema::build(ToyQuery, EmptyMutation, EmptySubscription).validation_mode(mode).finish();
            Self { strict: build(ValidationMode::Strict), fast: build(ValidationMode::Fast) }
        }

        /// Runs `query` the way the gateway's handler does; says which validation it got.
        async fn run(
            &self,
            cache: &DocumentCache,
            query: &str,
            variables: Value,
        ) -> (Validation, async_graphql::Response) {
            let mut request =
                async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(variables));
            let prepared = cache.prepare(&mut request);
            let schema = match prepared.validation {
                Validation::Passed => &self.fast,
                Validation::Full => &self.strict,
            };
            let response = schema.execute(request).await;
            prepared.record(&response);
            (prepared.validation, response)
        }
    }

    #[tokio::test]
    async fn a_cached_document_answers_like_a_fresh_parse_with_each_requests_variables() {
        let schemas = Schemas::new();
        let cache = DocumentCache::default();
        let query = "query($v: Int!) { double(value: $v) }";
        for value in [1, 2, 3] {
            let (_, response) = schemas.run(&cache, query, json!({ "v": value })).await;
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            assert_eq!(response.data.into_json().expect("JSON"), json!({ "double": value * 2 }));
        }
        assert_eq!(cache.len(), 1, "one text, one document");
    }

    #[tokio::test]
    async fn only_a_text_that_passed_every_rule_skips_them_and_a_wrong_variable_is_still_refused() {
        let schemas = Schemas::new();
        let cache = DocumentCache::default();
        let query = "query($v: Int!) { double(value: $v) }";
        let (first, _) = schemas.run(&cache, query, json!({ "v": 1 })).await;
        let (second, _) = schemas.run(&cache, query, json!({ "v": 2 })).await;
        assert_eq!((first, second), (Validation::Full, Validation::Passed));

        // A text failing a rule that reads only the text fails it every time, fully checked.
        for _ in 0..2 {
            let (validation, response) = schemas.run(&cache, "{ triple(value: 1) }", json!({})).await;
            assert_eq!(validation, Validation::Full);
            assert!(response.errors[0].message.contains("Unknown field \"triple\""), "{:?}", response.errors);
        }

        // The variables' values are checked by execution on the fast path.
        let (validation, response) = schemas.run(&cache, query, json!({ "v": "seven" })).await;
        assert_eq!(validation, Validation::Passed);
        assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
        assert!(response.errors[0].message.contains("Int"), "{:?}", response.errors);
        assert_eq!(response.data.into_json().expect("JSON"), Value::Null);
    }

    #[tokio::test]
    async fn texts_that_do_not_parse_or_are_long_are_not_cached_and_still_get_their_error() {
        let schemas = Schemas::new();
        let cache = DocumentCache::default();
        let (validation, response) = schemas.run(&cache, "{ double(value: ", json!({})).await;
        assert_eq!(validation, Validation::Full);
        assert!(!response.errors.is_empty());
        let long = format!("{{ double(value: 1) }}{}", " ".repeat(MAX_QUERY_BYTES));
        for _ in 0..2 {
            let (validation, response) = schemas.run(&cache, &long, json!({})).await;
            assert_eq!(validation, Validation::Full);
            assert!(response.errors.is_empty());
        }
        assert_eq!(cache.len(), 0);
    }
}
