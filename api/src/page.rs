//! Keyset pagination: a list is ordered by a unique key, a page holds at most `limit` items, and `next` is the
//! key of its last item, given back as `after` for the following page. No OFFSET, so page 1,000 costs what
//! page 1 does.

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Items per page unless `limit` says otherwise, and the most a request may ask for.
pub const DEFAULT_LIMIT: i64 = 50;
/// The most items one page may hold.
pub const MAX_LIMIT: i64 = 500;

/// The `?limit=<n>` asked for, checked: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when not given.
pub fn limit(asked: Option<i64>) -> Result<i64, ApiError> {
    match asked {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!("limit {n} is out of range 1..={MAX_LIMIT}"))),
    }
}

/// `?batch=&state=&after=&limit=`: the filters of a list of one batch's items in one state, and its page.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ListQuery<S> {
    /// Only this batch's items.
    pub batch: Option<scenequeue_core::ids::BatchId>,
    /// Only items in this state.
    pub state: Option<S>,
    /// The `next` of the previous page.
    pub after: Option<Uuid>,
    /// Items wanted.
    pub limit: Option<i64>,
}

impl<S> ListQuery<S> {
    /// The limit asked for, checked.
    pub fn limit(&self) -> Result<i64, ApiError> {
        limit(self.limit)
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<Uuid>,
}

impl<T> Page<T> {
    /// A page of `items` (fetched with one more than `limit`, to tell whether another page follows), keyed by
    /// `key`.
    pub fn new(mut items: Vec<T>, limit: i64, key: impl Fn(&T) -> Uuid) -> Self {
        let more = items.len() as i64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(0));
        let next = if more { items.last().map(key) } else { None };
        Self { items, next }
    }
}
