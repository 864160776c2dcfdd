//! The proxy to the configured upstreams, `ANY <route.path>/<rest>` and the frontend servers
//! (a fixed allow-list, [`upstreams`]; client input never picks the host or scheme): the
//! handler checks what is left of the request after the route's policy
//! ([`crate::bff::policy`]) and builds the upstream request;
//! [`exchange`] sends it with the session's token; [`headers`] decides what crosses in headers;
//! [`client`] is the per-worker HTTP client. Bodies stream both ways.

pub mod client;
pub mod exchange;
mod handler;
pub mod header_policy;
pub mod headers;
pub mod upstreams;

pub use client::{UpstreamResponse, WorkerClient};
pub use exchange::{
    Exchange, Outgoing, OutgoingBody, UpstreamError, end_session_if_needed, send_anonymous, send_with_token,
};
pub use handler::{exchange_for, proxy};
pub use headers::{Forwarded, PeerHeader, drop_response_header};
pub use upstreams::{Upstream, UpstreamKind, Upstreams};
