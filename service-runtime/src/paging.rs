//! Page/limit rules shared by every list RPC: `page` ≥ 1, `1 ≤ limit ≤ 100`.

use crate::{ServiceError, ServiceResult};

/// The page used when a request leaves `page` out.
pub const DEFAULT_PAGE: i32 = 1;
/// The page size used when a request leaves `limit` out.
pub const DEFAULT_LIMIT: i32 = 10;
/// The largest page size a client may ask for.
pub const MAX_LIMIT: i32 = 100;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: i32,
    pub limit: i32,
    /// Whether the caller wants the total across all pages (a count query of its own).
    pub count_total: bool,
}

impl PageRequest {
    /// Validates the optional `page` and `limit` of a request, filling in defaults; the total
    /// is counted unless `count_total` is `Some(false)`.
    pub fn new(page: Option<i32>, limit: Option<i32>, count_total: Option<bool>) -> ServiceResult<Self> {
        let page = page.unwrap_or(DEFAULT_PAGE);
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if page < 1 {
            return Err(ServiceError::invalid("page", "must be at least 1"));
        }
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ServiceError::invalid("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        Ok(Self { page, limit, count_total: count_total.unwrap_or(true) })
    }

    /// The number of rows to skip, as the database wants it.
    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.limit)
    }

    /// The page size, as the database wants it.
    pub fn limit(&self) -> i64 {
        i64::from(self.limit)
    }

    /// The total across all pages, from `count` (a query), run only when the caller asked for
    /// it.
    pub async fn total<F, E>(&self, count: impl FnOnce() -> F) -> Result<Option<i64>, E>
    where
        F: Future<Output = Result<i64, E>>,
    {
        if self.count_total { count().await.map(Some) } else { Ok(None) }
    }
}

/// Converts a row count, when one was made, to the `int32` the contracts use, saturating
/// rather than wrapping.
pub fn total_to_i32(total: Option<i64>) -> Option<i32> {
    total.map(|total| i32::try_from(total).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_absent() {
        assert_eq!(
            PageRequest::new(None, None, None).ok(),
            Some(PageRequest { page: 1, limit: 10, count_total: true })
        );
        assert!(!PageRequest::new(None, None, Some(false)).expect("valid").count_total);
    }

    #[test]
    fn bounds_are_enforced_with_the_field_named() {
        for (page, limit, field) in [(0, 10, "page"), (-1, 10, "page"), (1, 0, "limit"), (1, 101, "limit")] {
            let error = PageRequest::new(Some(page), Some(limit), None).expect_err("out of range");
            assert!(error.to_string().starts_with(field), "{error}");
        }
    }

    #[test]
    fn offset_does_not_overflow() {
        let request = PageRequest::new(Some(i32::MAX), Some(100), None).expect("valid");
        assert_eq!(request.offset(), (i64::from(i32::MAX) - 1) * 100);
    }
}
