//! cloakroom: a Backend-for-Frontend session broker.
//!
//! Three programs live in this crate — the BFF ([`bff`]), a reference OpenID Connect provider
//! ([`auth_server`]) and a reference resource server ([`resource_server`]) — on top of shared
//! pieces: configuration, the session/token store, JWT handling, OIDC client code and telemetry.

pub mod auth_server;
pub mod bff;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod jwt;
pub mod oidc;
pub mod resource_server;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
