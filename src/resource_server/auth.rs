//! `BearerToken`: an actix extractor that authenticates a request by its `Authorization:
//! Bearer` JWT, statelessly (RFC 6750, RFC 9068). Usable in any actix service: put a
//! [`AccessTokenVerifier`] in app data and take `BearerToken` as a handler argument.

use crate::jwt::{AccessClaims, JwtError, TokenType, Verifier};
use crate::web::ApiError;
use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use std::future::Future;
use std::pin::Pin;

/// Verifies access tokens for one audience (app data).
#[derive(Clone)]
pub struct AccessTokenVerifier {
    /// The verifier of the trusted issuer.
    pub verifier: Verifier,
    /// This service's identifier, required in `aud`.
    pub audience: String,
}

/// The verified claims of the request's access token.
#[derive(Debug, Clone)]
pub struct BearerToken(pub AccessClaims);

impl BearerToken {
    /// Fails with 403 `insufficient_scope` unless the token carries `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<&AccessClaims, ApiError> {
        if self.0.has_scope(scope) {
            Ok(&self.0)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("the token lacks scope `{scope}`"),
            )
            .with_www_authenticate(format!(r#"Bearer error="insufficient_scope", scope="{scope}""#)))
        }
    }
}

fn invalid_token(description: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", description)
        .with_www_authenticate(r#"Bearer error="invalid_token""#)
}

/// The token of the request's single `Authorization: Bearer` header.
fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let mut headers = req.headers().get_all(AUTHORIZATION);
    let value = headers.next().ok_or_else(|| invalid_token("no bearer token"))?;
    if headers.next().is_some() {
        return Err(invalid_token("more than one Authorization header"));
    }
    let value = value.to_str().map_err(|_| invalid_token("malformed Authorization header"))?;
    let (scheme, token) =
        value.split_once(' ').ok_or_else(|| invalid_token("malformed Authorization header"))?;
    let token = token.trim();
    let b64url = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || !token.chars().all(b64url) {
        return Err(invalid_token("malformed Authorization header"));
    }
    Ok(token.to_string())
}

impl FromRequest for BearerToken {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<AccessTokenVerifier>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let verifier =
                verifier.ok_or_else(|| ApiError::internal(&"AccessTokenVerifier missing from app data"))?;
            let token = token?;
            match verifier
                .verifier
                .verify::<AccessClaims>(&token, &verifier.audience, TokenType::Access)
                .await
            {
                Ok(claims) => Ok(BearerToken(claims)),
                Err(JwtError::KeysUnavailable) => Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the issuer's keys are unavailable",
                )
                .with_retry_after(1)),
                Err(e) => {
                    tracing::info!(reason = %e, "bearer token refused");
                    Err(invalid_token("the access token is invalid"))
                }
            }
        })
    }
}
