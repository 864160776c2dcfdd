//! Which relayed WebSockets belong to which session, so that a session's end closes them on
//! every instance within a second: sockets are registered under the keyed hash of their
//! session's id (the suffix of its store key, what `session-ended` carries), and the registry
//! listens to the store's bus. Every way a session ends early (logout, back-channel logout,
//! `DELETE /bff/sessions/{id}`, `cloakroom sessions revoke`) goes through
//! `BffSessionStore::delete_by_key`, which publishes `session-ended`; each open socket of that
//! session is then told to close. When the bus reports it may have lost messages
//! ([`Event::Lost`], or a lagging receiver), every session with an open socket is read again
//! from the store, and those that are gone are closed. Idle and absolute expiry need no
//! message: each relay wakes at its session's deadline and asks [`SocketRegistry::deadline`].

use crate::bff::session::{BffSessionStore, SESSION_ENDED_CHANNEL, SessionRecord};
use crate::store::{Event, StoreError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

/// The open sockets of each session (by hashed id), each by its registration number.
type Sockets = HashMap<String, HashMap<u64, watch::Sender<bool>>>;

struct Inner {
    sockets: Mutex<Sockets>,
    next: AtomicU64,
    sessions: BffSessionStore,
    /// `bff.session.idle_timeout_secs` when sockets slide it (`bff.websocket_slides_session`).
    slides: Option<u64>,
}

/// The registry of this instance's relayed sockets that belong to a session; cheap to clone.
#[derive(Clone)]
pub struct SocketRegistry {
    inner: Arc<Inner>,
}

/// One socket's place in the registry; dropping it (when the relay ends) removes it.
pub struct Registration {
    id: u64,
    hashed: String,
    registry: Weak<Inner>,
    /// Turns `true` when the session ended.
    pub ended: watch::Receiver<bool>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(inner) = self.registry.upgrade() {
            let mut sockets = inner.sockets.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(of_session) = sockets.get_mut(&self.hashed) {
                of_session.remove(&self.id);
                if of_session.is_empty() {
                    sockets.remove(&self.hashed);
                }
            }
        }
    }
}

impl SocketRegistry {
    /// A registry reading sessions from `sessions`, listening to its store's bus for as long as
    /// the registry lives (must be called inside a Tokio runtime). With `slides` (the idle
    /// timeout), sockets' frames slide their session's idle expiry ([`Self::slide`]).
    pub fn new(sessions: BffSessionStore, slides: Option<u64>) -> Self {
        let rx = sessions.store().events().subscribe();
        let inner = Arc::new(Inner { sockets: Mutex::default(), next: AtomicU64::new(0), sessions, slides });
        tokio::spawn(listen(Arc::downgrade(&inner), rx));
        Self { inner }
    }

    /// Registers a socket of the session with keyed hash `hashed`.
    pub fn register(&self, hashed: &str) -> Registration {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(false);
        let mut sockets = self.inner.sockets.lock().unwrap_or_else(|p| p.into_inner());
        sockets.entry(hashed.to_owned()).or_default().insert(id, tx);
        Registration { id, hashed: hashed.to_owned(), registry: Arc::downgrade(&self.inner), ended: rx }
    }

    /// The session's next deadline (Unix seconds: the earlier of its idle and absolute expiry),
    /// read from the store; `None` when it is gone or past it.
    pub async fn deadline(&self, hashed: &str) -> Result<Option<i64>, StoreError> {
        self.inner.deadline(hashed).await
    }

    /// How often a socket's frames may slide its session (a tenth of the idle timeout, at
    /// least a second); `None` when sockets do not slide sessions.
    pub fn slide_interval(&self) -> Option<std::time::Duration> {
        self.inner.slides.map(|idle| std::time::Duration::from_secs((idle / 10).max(1)))
    }

    /// Slides the idle expiry of the session `hashed` in the background (when configured).
    pub fn slide(&self, hashed: &str) {
        let Some(idle) = self.inner.slides else { return };
        let (inner, key) = (self.inner.clone(), BffSessionStore::key_of_hashed(hashed));
        tokio::spawn(async move {
            if let Err(e) = inner.sessions.slide_idle(&key, idle).await {
                tracing::warn!(error = %e, "a WebSocket's session could not be slid");
            }
        });
    }

    /// How many sockets are registered (all sessions).
    pub fn len(&self) -> usize {
        let sockets = self.inner.sockets.lock().unwrap_or_else(|p| p.into_inner());
        sockets.values().map(HashMap::len).sum()
    }

    /// True when no socket is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    async fn deadline(&self, hashed: &str) -> Result<Option<i64>, StoreError> {
        let state = self.sessions.read_state(&BffSessionStore::key_of_hashed(hashed)).await?;
        let deadline =
            state.as_ref().and_then(SessionRecord::from_state).map(|r| r.idle_expires_at.min(r.expires_at));
        Ok(deadline.filter(|d| crate::clock::now() < *d))
    }

    /// Tells every socket of the session `hashed` that it ended.
    fn end(&self, hashed: &str) {
        let ended = self.sockets.lock().unwrap_or_else(|p| p.into_inner()).remove(hashed);
        for tx in ended.into_iter().flat_map(HashMap::into_values) {
            let _ = tx.send(true);
        }
    }

    /// After a gap on the bus: reads every session with an open socket again and ends those
    /// that are gone. A store error ends nothing (a store failure is never a logout); the
    /// sockets' own deadline checks go on.
    async fn recheck_all(&self) {
        let sessions: Vec<String> =
            self.sockets.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        for hashed in sessions {
            match self.deadline(&hashed).await {
                Ok(None) => self.end(&hashed),
                Ok(Some(_)) => {}
                Err(e) => tracing::warn!(error = %e, "a WebSocket's session could not be re-read"),
            }
        }
    }
}

/// Applies the bus to the registry until the registry is gone.
async fn listen(registry: Weak<Inner>, mut rx: tokio::sync::broadcast::Receiver<Event>) {
    loop {
        let event = rx.recv().await;
        let Some(inner) = registry.upgrade() else { return };
        match event {
            Ok(Event::Message { channel, payload }) if channel == SESSION_ENDED_CHANNEL => {
                inner.end(&String::from_utf8_lossy(&payload));
            }
            Ok(Event::Message { .. }) => {}
            Ok(Event::Lost) | Err(RecvError::Lagged(_)) => {
                tokio::spawn(async move { inner.recheck_all().await });
            }
            Err(RecvError::Closed) => return,
        }
    }
}
