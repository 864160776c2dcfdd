//! Step-up authentication (RFC 9470). An upstream that finds the user's authentication too weak
//! or too old answers `401` with `WWW-Authenticate: Bearer error="insufficient_user_authentication"`
//! and `acr_values="…"` and/or `max_age=…`; a route may declare the same up front
//! (`[[bff.routes]] acr_values`, `max_age`). Either way the browser gets 401
//! `step_up_required` with a `login_url` — `/bff/login` asking for exactly that — built from
//! values parsed strictly from the header (never copied from it): a malformed challenge is no
//! step-up, and the upstream's own 401 passes through. A leaf: the proxy handler uses it.

use super::login_params::{is_acr_value, parse_acr_values, parse_max_age};
use super::paths::ReturnTo;
use crate::config::LoginParameter;
use crate::web::{ApiError, ErrorCode};

/// Longest `WWW-Authenticate` value looked at.
const MAX_HEADER: usize = 4096;
/// The RFC 9470 error code.
const INSUFFICIENT: &str = "insufficient_user_authentication";

/// What an authentication must satisfy: one of `acr_values` (when any), and no older than
/// `max_age` seconds (when set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthRequirement {
    /// Acceptable `acr` values; empty: any.
    pub acr_values: Vec<String>,
    /// Longest time since `auth_time`.
    pub max_age: Option<u64>,
}

/// Why a route's requirement cannot be used (checked at start).
#[derive(Debug, thiserror::Error)]
pub enum RequirementError {
    /// An `acr` value of the wrong form.
    #[error("`{0}` is not an acr value (1-128 visible ASCII characters, no quotes or backslashes)")]
    BadAcr(String),
    /// The step-up login would need a parameter `bff.login_parameters` does not allow.
    #[error("needs `{0}` in bff.login_parameters for the step-up login")]
    NotAllowed(&'static str),
}

impl AuthRequirement {
    /// A route's requirement from its configuration; `None` when it asks for nothing.
    pub fn of_route(
        acr_values: &[String],
        max_age: Option<u64>,
        allowed: &[LoginParameter],
    ) -> Result<Option<Self>, RequirementError> {
        if let Some(bad) = acr_values.iter().find(|a| !is_acr_value(a)) {
            return Err(RequirementError::BadAcr(bad.clone()));
        }
        let req = Self { acr_values: acr_values.to_vec(), max_age };
        if let Some(missing) = req.unallowed(allowed) {
            return Err(RequirementError::NotAllowed(missing));
        }
        Ok((!req.acr_values.is_empty() || max_age.is_some()).then_some(req))
    }

    /// The RFC 9470 challenge among an upstream's `WWW-Authenticate` values (a `Bearer` or
    /// `DPoP` challenge with `error="insufficient_user_authentication"` and a well-formed
    /// `acr_values` and/or `max_age`); `None` for anything else or anything malformed.
    pub fn from_challenges<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<Self> {
        for value in values {
            let Some(text) = std::str::from_utf8(value).ok().filter(|v| v.len() <= MAX_HEADER) else {
                continue;
            };
            for (scheme, params) in parse_challenges(text)? {
                let ours = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop");
                if ours && params.iter().any(|(k, v)| k == "error" && v == INSUFFICIENT) {
                    return Self::from_params(&params);
                }
            }
        }
        None
    }

    fn from_params(params: &[(String, String)]) -> Option<Self> {
        for (i, (k, _)) in params.iter().enumerate() {
            if params[..i].iter().any(|(o, _)| o == k) {
                return None;
            }
        }
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let acr_values = match get("acr_values") {
            Some(v) => parse_acr_values(v)?,
            None => Vec::new(),
        };
        let max_age = match get("max_age") {
            Some(v) => Some(parse_max_age(v)?),
            None => None,
        };
        (!acr_values.is_empty() || max_age.is_some()).then_some(Self { acr_values, max_age })
    }

    /// Whether a session authenticated with `acr` at `auth_time` satisfies this at `now`.
    pub fn is_met(&self, acr: Option<&str>, auth_time: Option<i64>, now: i64) -> bool {
        let acr_ok =
            self.acr_values.is_empty() || acr.is_some_and(|a| self.acr_values.iter().any(|v| v == a));
        let age_ok =
            self.max_age.is_none_or(|max| auth_time.is_some_and(|t| now.saturating_sub(t) <= max as i64));
        acr_ok && age_ok
    }

    /// The first parameter this requirement's login needs that `allowed` lacks.
    pub fn unallowed(&self, allowed: &[LoginParameter]) -> Option<&'static str> {
        if !self.acr_values.is_empty() && !allowed.contains(&LoginParameter::AcrValues) {
            return Some("acr_values");
        }
        if self.max_age.is_some() && !allowed.contains(&LoginParameter::MaxAge) {
            return Some("max_age");
        }
        None
    }

    /// `/bff/login` asking for this, returning to `return_to`.
    pub fn login_url(&self, return_to: &ReturnTo) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if !self.acr_values.is_empty() {
            q.append_pair("acr_values", &self.acr_values.join(" "));
        }
        if let Some(m) = self.max_age {
            q.append_pair("max_age", &m.to_string());
        }
        q.append_pair("returnTo", return_to.as_str());
        format!("/bff/login?{}", q.finish())
    }

    /// The browser's answer: 401 `step_up_required` with the login URL.
    pub fn into_error(self, return_to: &ReturnTo) -> ApiError {
        let what = match (self.acr_values.is_empty(), self.max_age) {
            (false, Some(_)) => "a stronger and more recent sign-in",
            (false, None) => "a stronger sign-in",
            _ => "a more recent sign-in",
        };
        ApiError::new(ErrorCode::StepUpRequired, format!("this call needs {what}"))
            .with_login_url(self.login_url(return_to))
    }
}

/// Where the step-up login returns: the page that made the call (its same-origin `Referer`,
/// path and query, when that is a valid local path), else `/`.
pub fn return_to_of(req: &actix_web::HttpRequest, public_origin: &str) -> ReturnTo {
    let from_referer = req
        .headers()
        .get(actix_web::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|u| u.origin().ascii_serialization() == public_origin)
        .map(|u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        });
    from_referer
        .and_then(|p| ReturnTo::parse(Some(&p)).ok())
        .or_else(|| ReturnTo::parse(None).ok())
        .unwrap_or_else(|| unreachable!("`/` is a local path"))
}

/// One challenge: its scheme and its parameters (names lower-cased, values unquoted).
type Challenge = (String, Vec<(String, String)>);

/// Parses a `WWW-Authenticate` value (RFC 9110 §11.6.1) into challenges with auth-params;
/// `None` when it is malformed (token68 forms included: none is ours).
fn parse_challenges(value: &str) -> Option<Vec<Challenge>> {
    let mut out: Vec<Challenge> = Vec::new();
    for item in split_items(value)? {
        let item = item.trim_matches([' ', '\t']);
        if item.is_empty() {
            continue;
        }
        let (first, rest) = take_token(item)?;
        let rest_trim = rest.trim_start_matches([' ', '\t']);
        if let Some(after_eq) = rest_trim.strip_prefix('=') {
            // `name=value`: a parameter of the current challenge.
            let value = parse_value(after_eq)?;
            out.last_mut()?.1.push((first.to_ascii_lowercase(), value));
        } else if rest_trim.is_empty() {
            out.push((first.to_string(), Vec::new()));
        } else if rest.starts_with([' ', '\t']) {
            // `scheme name=value`: a new challenge and its first parameter.
            let (name, after) = take_token(rest_trim)?;
            let value = parse_value(after.trim_start_matches([' ', '\t']).strip_prefix('=')?)?;
            out.push((first.to_string(), vec![(name.to_ascii_lowercase(), value)]));
        } else {
            return None;
        }
    }
    Some(out)
}

/// Splits at commas outside quoted strings; `None` for an unterminated quote.
fn split_items(value: &str) -> Option<Vec<&str>> {
    let (mut items, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    items.push(&value[start..]);
    Some(items)
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A leading token and what follows it.
fn take_token(s: &str) -> Option<(&str, &str)> {
    let end = s.find(|c: char| !is_tchar(c)).unwrap_or(s.len());
    (end > 0).then(|| s.split_at(end))
}

/// A parameter value after `=`: a token or a quoted string, then nothing but whitespace.
fn parse_value(s: &str) -> Option<String> {
    let s = s.trim_matches([' ', '\t']);
    let Some(inner) = s.strip_prefix('"') else {
        let (token, rest) = take_token(s)?;
        return rest.is_empty().then(|| token.to_string());
    };
    let (mut out, mut escaped) = (String::new(), false);
    for (i, c) in inner.char_indices() {
        if c.is_control() && c != '\t' {
            return None;
        }
        match c {
            _ if escaped => {
                out.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            '"' => return (i + 1 == inner.len()).then_some(out),
            _ => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(v: &str) -> Option<AuthRequirement> {
        AuthRequirement::from_challenges(std::iter::once(v.as_bytes()))
    }

    #[test]
    fn a_well_formed_step_up_challenge_is_read() {
        let r = challenge(
            r#"Bearer realm="api", error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="urn:x:mfa phr", max_age=300"#,
        )
        .unwrap();
        assert_eq!(r.acr_values, ["urn:x:mfa", "phr"]);
        assert_eq!(r.max_age, Some(300));
        let r = challenge(r#"DPoP algs="ES256", Bearer error=insufficient_user_authentication, max_age="0""#)
            .unwrap();
        assert_eq!((r.acr_values.len(), r.max_age), (0, Some(0)));
        assert_eq!(
            r.login_url(&ReturnTo::parse(Some("/app/?a=1")).unwrap()),
            "/bff/login?max_age=0&returnTo=%2Fapp%2F%3Fa%3D1"
        );
    }

    #[test]
    fn malformed_or_other_challenges_are_no_step_up() {
        for v in [
            r#"Bearer error="invalid_token""#,
            r#"Bearer error="insufficient_user_authentication""#,
            r#"Bearer error="insufficient_user_authentication", acr_values="a\"b""#,
            r#"Bearer error="insufficient_user_authentication", acr_values="<script>""#.replace('<', "\u{1}").as_str(),
            r#"Bearer error="insufficient_user_authentication", acr_values="a  b""#,
            r#"Bearer error="insufficient_user_authentication", acr_values="x", acr_values="y""#,
            r#"Bearer error="insufficient_user_authentication", max_age=-1"#,
            r#"Bearer error="insufficient_user_authentication", max_age="1 ; x""#,
            r#"Bearer error="insufficient_user_authentication", acr_values="unterminated"#,
            r#"Bearer error="insufficient_user_authentication" acr_values="x""#,
            r#"Basic error="insufficient_user_authentication", acr_values="x""#,
            r#"error="insufficient_user_authentication", acr_values="x""#,
        ] {
            assert_eq!(challenge(v), None, "{v}");
        }
    }

    #[test]
    fn a_requirement_is_met_by_a_listed_acr_and_a_recent_enough_authentication() {
        let r = AuthRequirement { acr_values: vec!["mfa".into()], max_age: Some(60) };
        assert!(r.is_met(Some("mfa"), Some(1000), 1060));
        assert!(!r.is_met(Some("mfa"), Some(1000), 1061));
        assert!(!r.is_met(Some("pwd"), Some(1000), 1000));
        assert!(!r.is_met(None, Some(1000), 1000));
        assert!(!r.is_met(Some("mfa"), None, 1000));
    }
}
