//! What one request's session plumbing tells the rest of that request, through a task-local
//! scope opened by the outermost middleware ([`watch_store_failures`]): whether a session
//! store call failed (so the guard can answer 503 instead of actix-session's opaque 500), and
//! the session record as the store loaded it, already parsed, so that the handler does not
//! parse the same JSON again on every request.

use super::session::SessionRecord;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::Arc;

/// A session record as stored (`raw`, its JSON in actix-session's state) and parsed.
#[derive(Debug)]
pub struct ParsedRecord {
    /// The JSON text the record was parsed from.
    pub raw: String,
    /// The record.
    pub record: Arc<SessionRecord>,
}

impl ParsedRecord {
    /// Parses `raw`; `None` when it is not a session record.
    pub fn parse(raw: &str) -> Option<Self> {
        let record = serde_json::from_str::<SessionRecord>(raw).ok()?;
        Some(Self { raw: raw.to_owned(), record: Arc::new(record) })
    }
}

struct Scope {
    store_failed: Cell<bool>,
    loaded: RefCell<Option<Arc<ParsedRecord>>>,
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// Runs `fut` (the rest of the middleware chain) in a fresh scope and reports whether any
/// session store call inside it failed.
pub async fn watch_store_failures<F: Future>(fut: F) -> (F::Output, bool) {
    let scope = Scope { store_failed: Cell::new(false), loaded: RefCell::new(None) };
    SCOPE
        .scope(scope, async move {
            let out = fut.await;
            let failed = SCOPE.with(|s| s.store_failed.get());
            (out, failed)
        })
        .await
}

/// Flags a failed session store call for the guard (no-op outside a scope).
pub fn note_store_failure() {
    let _ = SCOPE.try_with(|s| s.store_failed.set(true));
}

/// Remembers the record the session store just loaded for this request.
pub fn remember_loaded(parsed: Arc<ParsedRecord>) {
    let _ = SCOPE.try_with(|s| *s.loaded.borrow_mut() = Some(parsed));
}

/// The record loaded for this request, if its JSON is exactly `raw` (the session state may
/// have been changed by the handler since the load; then the caller parses `raw` itself).
pub fn loaded_record(raw: &str) -> Option<Arc<SessionRecord>> {
    SCOPE
        .try_with(|s| s.loaded.borrow().as_ref().filter(|p| p.raw == raw).map(|p| p.record.clone()))
        .ok()
        .flatten()
}
