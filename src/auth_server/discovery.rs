//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0) and `/jwks`.

use super::state::{AppState, SUPPORTED_SCOPES};
use actix_web::{HttpResponse, web};

/// Client authentication methods at the token, revocation and pushed-request endpoints.
const AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post", "private_key_jwt"];
/// Algorithms a client assertion may be signed with (those `jwt::Verifier` binds to keys).
const ASSERTION_ALGS: &[&str] =
    &["ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"];

/// `GET /.well-known/openid-configuration`.
pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    let doc = serde_json::json!({
        "issuer": state.issuer,
        "authorization_endpoint": state.url("/authorize"),
        "token_endpoint": state.url("/token"),
        "jwks_uri": state.url("/jwks"),
        "userinfo_endpoint": state.url("/userinfo"),
        "revocation_endpoint": state.url("/revoke"),
        "end_session_endpoint": state.url("/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "userinfo_signing_alg_values_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": crate::jwt::dpop::DpopAlg::ALL.map(|a| a.name()),
        "pushed_authorization_request_endpoint": state.url("/par"),
        "require_pushed_authorization_requests": false,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "scopes_supported": SUPPORTED_SCOPES,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "sid", "azp", "preferred_username", "name"],
        "prompt_values_supported": ["none", "login"],
        "acr_values_supported": super::second_factor::ACR_VALUES_SUPPORTED,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
    });
    HttpResponse::Ok().insert_header(("Cache-Control", "public, max-age=300")).json(doc)
}

/// `GET /jwks`: the public signing key(s).
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(serde_json::json!({ "keys": state.jwks }))
}
