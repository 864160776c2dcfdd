//! The integration-test harness: a private Redis, the real programs on port 0, and a
//! browser-like client. Each test binary uses what it needs.
#![allow(dead_code, unused_imports)]

pub mod apis;
pub mod apps;
pub mod attack;
pub mod binary;
pub mod browser;
pub mod chrome;
pub mod dpop;
pub mod echo_upstream;
pub mod failover;
pub mod forge;
pub mod interop;
pub mod memory;
pub mod npm;
pub mod oidc_flow;
pub mod oidc_provider;
pub mod otlp_receiver;
pub mod provider_tap;
pub mod raw_http;
pub mod redis;
pub mod redis_cluster;
pub mod redis_process;
pub mod redis_sentinel;
pub mod resources;
pub mod stall_proxy;
pub mod step_up;
pub mod verbs;
pub mod vite;
pub mod ws_upstream;

pub use apps::{CLIENT_ID, OTHER_USER, Stack, StackConfig, USER};
pub use browser::{Browser, Page};
