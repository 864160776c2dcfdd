//! The cross-instance half of single-flight refresh: a store lock per session
//! (`refresh-lock:{hashed handle}`, a random owner token, an expiry), released with
//! compare-and-delete, and a notice on the store event bus (`refreshed:{hashed handle}`) that
//! wakes the requests of every instance waiting for it — no polling.
//!
//! A waiter subscribes BEFORE it re-reads the token record, so a notice published between its
//! read and its wait is not missed. It also wakes when the lock expires (a holder that crashed
//! publishes nothing), and on [`Event::Lost`] or a lagged receiver (it may have missed the notice).

use crate::store::{Event, Store, StoreError};
use std::time::Duration;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio::time::Instant;

/// What the holder tells the waiters when it lets go of the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Re-read the record (new tokens were stored, or nothing was needed).
    Done,
    /// The provider could not be reached: waiters answer 503 rather than try again at once.
    Unavailable,
    /// The grant ended: the session is gone.
    Ended,
    /// The provider refused the token asked for (a client-credentials token, whose lock is
    /// its audience's alone): waiters answer 403 `token_refused` rather than ask again.
    Refused,
}

impl Notice {
    fn payload(self) -> &'static [u8] {
        match self {
            Notice::Done => b"done",
            Notice::Unavailable => b"unavailable",
            Notice::Ended => b"ended",
            Notice::Refused => b"refused",
        }
    }

    fn parse(payload: &[u8]) -> Notice {
        match payload {
            b"unavailable" => Notice::Unavailable,
            b"ended" => Notice::Ended,
            b"refused" => Notice::Refused,
            _ => Notice::Done,
        }
    }
}

/// Why a waiter stopped waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The holder published a notice.
    Notice(Notice),
    /// The lock may be free or a notice may have been missed: re-read and decide again.
    Recheck,
    /// The wait budget is spent.
    TimedOut,
}

/// A held lock; give it back with [`RefreshLock::release`].
#[derive(Debug)]
pub struct Held {
    hashed: String,
    owner: Vec<u8>,
}

/// The lock settings and store; cheap to clone.
#[derive(Clone)]
pub struct RefreshLock {
    store: Store,
    /// Lock expiry.
    pub ttl: Duration,
    /// How long a waiter waits in total.
    pub wait: Duration,
}

fn lock_key(hashed: &str) -> String {
    format!("refresh-lock:{hashed}")
}

fn channel(hashed: &str) -> String {
    format!("refreshed:{hashed}")
}

/// Extra time after the lock's expiry before a waiter looks again.
const EXPIRY_SLACK: Duration = Duration::from_millis(20);

impl RefreshLock {
    /// Locks over `store` expiring after `ttl`; waiters give up after `wait`.
    pub fn new(store: Store, ttl: Duration, wait: Duration) -> Self {
        Self { store, ttl, wait }
    }

    /// A receiver of bus events; take it BEFORE re-reading the record.
    pub fn subscribe(&self) -> Receiver<Event> {
        self.store.events().subscribe()
    }

    /// Takes the lock of the session whose hashed handle is `hashed`, if it is free.
    pub async fn try_acquire(&self, hashed: &str) -> Result<Option<Held>, StoreError> {
        let owner = crate::crypto::random_token(16).into_bytes();
        match self.store.set_nx(&lock_key(hashed), &owner, self.ttl).await {
            Ok(taken) => Ok(taken.then(|| Held { hashed: hashed.to_string(), owner })),
            Err(e) => {
                self.clear_orphan(hashed, owner);
                Err(e)
            }
        }
    }

    /// After a `SET NX` that failed on our side (typically timed out against a stalled store),
    /// the command may still run once the store wakes up: the lock would then be ours with
    /// nobody to release it, and every request of the session would wait for its expiry.
    /// Deletes it — only if it holds our owner value — in the background, looking again with
    /// growing pauses until it was found and deleted (then the waiters are told to look again)
    /// or could no longer exist.
    fn clear_orphan(&self, hashed: &str, owner: Vec<u8>) {
        let (key, channel) = (lock_key(hashed), channel(hashed));
        let store = self.store.clone();
        let give_up = Instant::now() + self.ttl;
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(100);
            while Instant::now() < give_up {
                tokio::time::sleep(pause).await;
                if let Ok(true) = store.compare_and_delete(&key, &owner).await {
                    tracing::info!("a refresh lock left by a failed store call was released");
                    let _ = store.publish(&channel, Notice::Done.payload()).await;
                    return;
                }
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        });
    }

    /// Releases `held` (only if still ours) and wakes every waiter with `notice`. Store errors
    /// are logged: the lock then expires by itself and waiters wake at its expiry.
    pub async fn release(&self, held: Held, notice: Notice) {
        if let Err(e) = self.store.compare_and_delete(&lock_key(&held.hashed), &held.owner).await {
            tracing::warn!(error = %e, "refresh lock not released; it will expire");
        }
        if let Err(e) = self.store.publish(&channel(&held.hashed), notice.payload()).await {
            tracing::warn!(error = %e, "refresh notice not published; waiters wake at lock expiry");
        }
    }

    /// Waits for the holder's notice, the lock's expiry, a possible gap on the bus, or
    /// `deadline`, whichever comes first.
    #[tracing::instrument(name = "refresh lock wait", level = "debug", skip_all)]
    pub async fn wait(
        &self,
        hashed: &str,
        rx: &mut Receiver<Event>,
        deadline: Instant,
    ) -> Result<Wake, StoreError> {
        let now = Instant::now();
        if now >= deadline {
            return Ok(Wake::TimedOut);
        }
        let Some(lock_left) = self.store.ttl(&lock_key(hashed)).await? else {
            return Ok(Wake::Recheck);
        };
        let until = deadline.min(now + lock_left.min(self.ttl) + EXPIRY_SLACK);
        let ours = channel(hashed);
        loop {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Ok(Event::Message { channel, payload })) if channel == ours => {
                    return Ok(Wake::Notice(Notice::parse(&payload)));
                }
                Ok(Ok(Event::Message { .. })) => continue,
                Ok(Ok(Event::Lost)) | Ok(Err(RecvError::Lagged(_))) => return Ok(Wake::Recheck),
                // The bus lives as long as the store; should it close, fall back to the expiry.
                Ok(Err(RecvError::Closed)) => {
                    tokio::time::sleep_until(until).await;
                    return Ok(Wake::Recheck);
                }
                Err(_) if until >= deadline => return Ok(Wake::TimedOut),
                Err(_) => return Ok(Wake::Recheck),
            }
        }
    }
}
