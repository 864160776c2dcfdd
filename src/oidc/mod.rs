//! OpenID Connect client pieces shared by the BFF and the resource server: discovery today;
//! PKCE and token-endpoint calls live beside it.

pub mod discovery;

pub use discovery::{DiscoveryError, ProviderMetadata, discover};
