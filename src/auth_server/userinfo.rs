//! `GET/POST /userinfo` (OIDC Core §5.3) with a Bearer access token this server issued. A
//! DPoP-bound token (`cnf.jkt`) is refused here: this endpoint takes no proofs, and a bound
//! token must never work as a bearer token.

use super::errors::OAuthError;
use super::state::AppState;
use super::tokens::verify_access_token;
use crate::web::ApiError;
use crate::web::ErrorCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

/// `GET /userinfo` and `POST /userinfo`.
pub async fn userinfo(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, OAuthError> {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or(OAuthError::InvalidToken("a Bearer access token is required"))?;
    let claims = verify_access_token(&state, token)
        .map_err(|_| OAuthError::InvalidToken("the access token is invalid"))?;
    if claims.cnf.is_some() {
        return Err(OAuthError::InvalidToken("a DPoP-bound access token is not accepted here"));
    }
    let scope: Vec<&str> = claims.scope.split(' ').collect();
    if !scope.contains(&"openid") {
        return Ok(ApiError::new(ErrorCode::InsufficientScope, "the openid scope is required")
            .with_www_authenticate("Bearer error=\"insufficient_scope\", scope=\"openid\"")
            .error_response());
    }
    let mut body = serde_json::json!({ "sub": claims.sub });
    if scope.contains(&"profile")
        && let Some(name) = super::users::username_of(&state, &claims.sub).await?
    {
        body["preferred_username"] = name.clone().into();
        body["name"] = name.into();
    }
    Ok(HttpResponse::Ok().insert_header(crate::web::no_store()).json(body))
}
