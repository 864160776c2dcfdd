//! What one request's session plumbing tells the rest of that request, through a task-local
//! scope opened by the outermost middleware ([`watch_store_failures`]). This is the one
//! workaround around actix-session that remains, and it stays inside this module: its
//! `SessionStore` sees no request, so the store can report to the request only this way — whether a session
//! store call failed (so the guard can answer 503 instead of actix-session's opaque 500), and
//! the session record as the store loaded it, already parsed, so that the handler does not
//! parse the same JSON again on every request. The store loads one session per request (the
//! session middleware's load is its only reader), so the remembered record is this request's.

use super::record::SessionRecord;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::Arc;

struct Scope {
    store_failed: Cell<bool>,
    loaded: RefCell<Option<Arc<SessionRecord>>>,
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
pub fn remember_loaded(record: Arc<SessionRecord>) {
    let _ = SCOPE.try_with(|s| *s.loaded.borrow_mut() = Some(record));
}

/// The record the store loaded for this request. Only meaningful while the session state is
/// as loaded (actix-session's status `Unchanged`); after a change the caller parses the state.
pub fn loaded_record() -> Option<Arc<SessionRecord>> {
    SCOPE.try_with(|s| s.loaded.borrow().clone()).ok().flatten()
}
