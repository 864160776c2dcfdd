//! The integration-test harness: a private Redis, the real programs on port 0, and a
//! browser-like client. Each test binary uses what it needs.
#![allow(dead_code, unused_imports)]

pub mod apps;
pub mod browser;
pub mod chrome;
pub mod oidc_flow;
pub mod oidc_provider;
pub mod redis;

pub use apps::{CLIENT_ID, OTHER_USER, Stack, StackConfig, USER};
pub use browser::{Browser, Page};
