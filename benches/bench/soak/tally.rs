//! What the virtual users saw: counts of every kind of call, and each bad outcome with the
//! time span of the request, to be sorted into "inside a fault window" or "outside" at the end.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;

/// A call the virtual users make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Call {
    /// A completed login (login page, form, callback).
    Login,
    /// `GET /api/…`.
    ApiRead,
    /// `POST`/`DELETE /api/notes…`.
    ApiWrite,
    /// `GET /bff/user`.
    User,
    /// `POST /bff/logout`.
    Logout,
}

/// A bad outcome.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bad {
    /// A 5xx answer, with its `error` code.
    ServerError(String),
    /// 401 for a session that was never logged out, with its `error` code.
    LostSession(String),
    /// The login flow failed (its first words say where).
    LoginFailed(String),
    /// Another unexpected status (a 4xx other than 401), with its `error` code.
    Unexpected(u16, String),
    /// No answer at all from a BFF (connection refused or reset, timeout).
    Transport,
    /// A logged-out session was still accepted (by another instance).
    LogoutNotHonoured,
}

/// A bad outcome and when its request ran (seconds since the start).
#[derive(Debug, Clone)]
pub struct Event {
    /// What went wrong.
    pub bad: Bad,
    /// When the request started.
    pub from: f64,
    /// When it ended.
    pub to: f64,
}

/// The counters, shared by every virtual user.
pub struct Tally {
    start: Instant,
    calls: Mutex<BTreeMap<Call, u64>>,
    bad: Mutex<Vec<Event>>,
    sessions: Mutex<Vec<(f64, f64)>>,
    /// Logged-out sessions checked on another instance.
    pub logout_checks: AtomicU64,
}

impl Tally {
    /// An empty tally; times count from now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            calls: Mutex::default(),
            bad: Mutex::default(),
            sessions: Mutex::default(),
            logout_checks: AtomicU64::new(0),
        }
    }

    /// Seconds since the start.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// One call done, whatever its outcome.
    pub fn count(&self, call: Call) {
        *self.calls.lock().unwrap_or_else(|p| p.into_inner()).entry(call).or_default() += 1;
    }

    /// A bad outcome of a request that started at `from`.
    pub fn bad(&self, bad: Bad, from: f64) {
        let event = Event { bad, from, to: self.now() };
        self.bad.lock().unwrap_or_else(|p| p.into_inner()).push(event);
    }

    /// A session's life: its login and its last successful call (seconds since the start).
    pub fn session(&self, login: f64, last_ok: f64) {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).push((login, last_ok));
    }

    /// Every finished session's life.
    pub fn sessions(&self) -> Vec<(f64, f64)> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A logout was checked on another instance.
    pub fn logout_checked(&self) {
        self.logout_checks.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls so far.
    pub fn calls(&self) -> BTreeMap<Call, u64> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Bad outcomes so far.
    pub fn events(&self) -> Vec<Event> {
        self.bad.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
