//! OpenID Connect client pieces shared by the BFF and the resource server: discovery, PKCE and
//! token-endpoint calls.

pub mod client;
pub mod client_auth;
pub mod discovery;
pub mod par;
pub mod pkce;

pub use client::{ClientAuth, ClientCredentials, ClientKeys, TokenEndpointError, TokenResponse};
pub use discovery::{DiscoveryError, ProviderMetadata, discover};
pub use pkce::Pkce;
