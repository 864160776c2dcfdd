//! OpenID Connect client pieces: discovery, PKCE, token endpoint calls.
