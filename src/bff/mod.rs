//! The BFF session broker (contract §3): the browser holds one opaque `__Host-cloakroom` cookie;
//! the BFF holds the tokens, refreshes them, and proxies API calls with `Authorization: Bearer`.
//!
//! Layout (see `docs/ARCHITECTURE.md`): `app` (the composition root: state, middleware order,
//! routes) and `state`; `policy` (what each endpoint and route asks of a request, enforced in one
//! middleware; CSRF); `session` (cookie, actix-session store, typed record, ending sessions);
//! `tokens` (token records, single-flight refresh, revocation); `proxy` (handler, exchange,
//! headers, client); `frontend` (the app's built files); `near_cache`; the endpoint handlers `login`/`callback` (code flow),
//! `account` (`/bff/user`, `/bff/logout`), `sessions` (`/bff/sessions`), `backchannel`, `pages`;
//! and the leaves `keys`, `sealed`, `paths`, `id_token`, `provider`, `metrics`.

mod account;
pub mod admin;
mod app;
pub mod backchannel;
mod callback;
mod client_keys;
mod compact;
pub mod frontend;
pub mod id_token;
pub mod keys;
mod login;
pub mod login_params;
pub mod metrics;
pub mod near_cache;
mod pages;
pub mod paths;
pub mod policy;
pub mod provider;
pub mod proxy;
mod sealed;
pub mod session;
mod sessions;
pub mod state;
pub mod step_up;
pub mod tokens;
pub mod websocket;

pub use app::Application;
