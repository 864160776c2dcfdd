//! The browser session, in one place: the `__Host-cloakroom` cookie and its strict reading
//! (`cookie`, `guard`), actix-session's store over the project store (`store`: near cache, sealed
//! state, TTLs), the typed record with idle sliding, absolute expiry and client binding
//! (`record`, `typed`), the indexes by subject and provider session (`index`), and the one
//! service that ends sessions (`end`).
//!
//! actix-session stays the session layer: its middleware and `SessionStore` trait. What it does
//! not do lives here with its reason: the cookie guard (duplicate and malformed cookies, key
//! rotation, store failures as 503 instead of its opaque 500), and the request scope (`scope`)
//! through which the store hands the parsed record and its failures to the same request.

mod client_info;
pub mod cookie;
mod end;
mod guard;
mod index;
mod record;
mod scope;
mod store;
mod stored;
mod typed;

pub use client_info::ClientInfo;
pub use cookie::SESSION_COOKIE;
pub use end::{EndTarget, SessionEnder};
pub use guard::{hashed_id, session_guard};
pub use index::{LiveSession, live_sessions, sessions_of};
pub use record::{RECORD_KEY, SessionRecord};
pub use store::{
    BffSessionStore, SESSION_ENDED_CHANNEL, SESSION_ID_LEN, is_well_formed_id, sid_index_key, sub_index_key,
};
pub use typed::{SessionError, SessionSettings, TypedSession};

use crate::bff::keys::Keys;
use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_web::cookie::SameSite;

/// actix-session's middleware over `store`: a `__Host-` cookie (Secure, HttpOnly, SameSite=Lax,
/// path `/`, no domain) signed with the current cookie key, and only changed state written —
/// the idle extension is written by [`TypedSession::current`] at most once per tenth of the idle
/// timeout, never a TTL refresh per request.
pub fn middleware(
    store: BffSessionStore,
    keys: &Keys,
    idle_timeout_secs: u64,
) -> SessionMiddleware<BffSessionStore> {
    SessionMiddleware::builder(store, keys.cookie_key.clone())
        .cookie_name(SESSION_COOKIE.to_string())
        .cookie_secure(true)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/".to_string())
        .cookie_domain(None)
        .cookie_content_security(CookieContentSecurity::Signed)
        .session_lifecycle(
            BrowserSession::default()
                .state_ttl(actix_web::cookie::time::Duration::seconds(idle_timeout_secs as i64))
                .state_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
        )
        .build()
}
