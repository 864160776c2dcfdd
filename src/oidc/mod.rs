//! OpenID Connect client pieces shared by the BFF and the resource server: discovery, PKCE and
//! token-endpoint calls.

pub mod client;
pub mod discovery;
pub mod pkce;

pub use client::{ClientCredentials, TokenEndpointError, TokenResponse};
pub use discovery::{DiscoveryError, ProviderMetadata, discover};
pub use pkce::Pkce;
