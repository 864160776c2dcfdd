//! Resource indicators (RFC 8707): which resource (audience) an access token is for. A client
//! may name resources at `/authorize` (several, recorded with the code and its grant) and one
//! per token request; each must be a resource the client may use, and — when the authorization
//! request named some — one of those. Without one, a token is for the default audience.

use super::errors::OAuthError;
use super::params::Params;

/// The parameter's name.
pub const PARAM: &str = "resource";

/// Checks one resource indicator: an absolute `http`/`https` URL with a host and no fragment
/// (RFC 8707 §2). Compared as written, never normalised.
pub fn check_indicator(value: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(value).map_err(|_| "must be an absolute URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http or https URL with a host");
    }
    if url.fragment().is_some() || value.contains('#') {
        return Err("must not have a fragment");
    }
    Ok(())
}

/// The `resource` values of an authorization request, each well-formed and one the client
/// `may_use`; refused with an `invalid_target` description.
pub fn for_authorization(
    params: &Params,
    may_use: impl Fn(&str) -> bool,
) -> Result<Vec<String>, &'static str> {
    let mut out: Vec<String> = Vec::new();
    for r in params.all(PARAM) {
        check_indicator(r).map_err(|_| "a resource is not an absolute URL without fragment")?;
        if !may_use(r) {
            return Err("a resource is not allowed for this client");
        }
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    Ok(out)
}

/// The audience of the access token a token request asks for: its one `resource`, which the
/// client `may_use` and, when the grant names resources (`granted`), one of them; without a
/// `resource`, `None` (the default audience).
pub fn for_token<'p>(
    params: &'p Params,
    granted: &[String],
    may_use: impl Fn(&str) -> bool,
) -> Result<Option<&'p str>, OAuthError> {
    let asked = match params.all(PARAM) {
        [] => return Ok(None),
        [one] => one.as_str(),
        _ => return Err(OAuthError::InvalidTarget("one resource per token request")),
    };
    if check_indicator(asked).is_err() {
        return Err(OAuthError::InvalidTarget("the resource is not an absolute URL without fragment"));
    }
    if !may_use(asked) {
        return Err(OAuthError::InvalidTarget("the resource is not allowed for this client"));
    }
    if !granted.is_empty() && !granted.iter().any(|g| g == asked) {
        return Err(OAuthError::InvalidTarget("the resource was not named in the authorization request"));
    }
    Ok(Some(asked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indicators_are_absolute_http_urls_without_fragment() {
        assert!(check_indicator("https://api.example").is_ok());
        assert!(check_indicator("http://127.0.0.1:8082/v1").is_ok());
        for bad in ["api.example", "/v1", "urn:example:api", "https://api.example/#x", "https://a/#", ""] {
            assert!(check_indicator(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_token_request_names_at_most_one_resource_of_the_grant() {
        let allow = |_: &str| true;
        let none = Params::parse(b"").unwrap();
        assert_eq!(for_token(&none, &[], allow).unwrap(), None);
        let two = Params::parse(b"resource=https://a&resource=https://b").unwrap();
        assert!(matches!(for_token(&two, &[], allow), Err(OAuthError::InvalidTarget(_))));
        let one = Params::parse(b"resource=https://b").unwrap();
        assert_eq!(for_token(&one, &[], allow).unwrap(), Some("https://b"));
        assert!(for_token(&one, &["https://a".into()], allow).is_err());
        assert!(for_token(&one, &[], |_| false).is_err());
    }
}
