//! The query of `/bff/login`: `returnTo` plus the authorization-request parameters
//! `bff.login_parameters` allows (`prompt`, `login_hint`, `acr_values`, `max_age`,
//! `ui_locales`), each at most once, length-limited and checked for its form before it goes to
//! the provider. A leaf: the login handler and the step-up answer (which builds such a query)
//! both use it.

use super::paths::ReturnTo;
use crate::config::LoginParameter;

/// Most values in `acr_values` or `ui_locales`.
const MAX_LIST_ITEMS: usize = 8;
/// Longest single `acr_values` value (a URN or a short name).
const MAX_ACR: usize = 128;
/// Longest `login_hint`.
const MAX_LOGIN_HINT: usize = 256;
/// Longest language tag in `ui_locales` (BCP 47 tags are at most 35 characters in practice).
const MAX_LOCALE: usize = 35;
/// Most digits of `max_age` (over 30 years; a larger value asks for nothing).
const MAX_AGE_DIGITS: usize = 10;
/// The `prompt` values of OIDC Core §3.1.2.1.
const PROMPTS: &[&str] = &["none", "login", "consent", "select_account"];

/// Why a login query was refused (400 `invalid_login_parameter`, or `invalid_request` for
/// `returnTo`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginParamError {
    /// `returnTo` is not a local path, or is repeated.
    #[error("returnTo must be a local path")]
    BadReturnTo,
    /// A parameter this BFF does not pass on.
    #[error("the login parameter `{0}` is not allowed")]
    NotAllowed(String),
    /// A parameter given twice.
    #[error("the login parameter `{0}` is repeated")]
    Repeated(&'static str),
    /// A value of the wrong form or length.
    #[error("the login parameter `{0}` is malformed")]
    Malformed(&'static str),
}

/// A checked login query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginQuery {
    /// Where to go after login (`/` when not given).
    pub return_to: String,
    /// `prompt` values.
    pub prompt: Vec<String>,
    /// `login_hint`.
    pub login_hint: Option<String>,
    /// `acr_values`, in the order given.
    pub acr_values: Vec<String>,
    /// `max_age` in seconds.
    pub max_age: Option<u64>,
    /// `ui_locales`.
    pub ui_locales: Vec<String>,
}

impl LoginQuery {
    /// Parses `/bff/login`'s query under the allow-list `allowed`.
    pub fn parse(query: &str, allowed: &[LoginParameter]) -> Result<Self, LoginParamError> {
        let mut return_to: Option<String> = None;
        let mut seen: Vec<&'static str> = Vec::new();
        let mut out = LoginQuery::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if k == "returnTo" {
                if return_to.replace(v.into_owned()).is_some() {
                    return Err(LoginParamError::BadReturnTo);
                }
                continue;
            }
            let Some(param) = allowed.iter().copied().find(|p| p.name() == k) else {
                return Err(LoginParamError::NotAllowed(printable(&k)));
            };
            if seen.contains(&param.name()) {
                return Err(LoginParamError::Repeated(param.name()));
            }
            seen.push(param.name());
            out.set(param, &v)?;
        }
        let return_to = ReturnTo::parse(return_to.as_deref()).map_err(|_| LoginParamError::BadReturnTo)?;
        out.return_to = return_to.as_str().to_string();
        Ok(out)
    }

    fn set(&mut self, param: LoginParameter, value: &str) -> Result<(), LoginParamError> {
        let bad = || LoginParamError::Malformed(param.name());
        match param {
            LoginParameter::Prompt => self.prompt = parse_prompt(value).ok_or_else(bad)?,
            LoginParameter::LoginHint => {
                let ok = !value.is_empty()
                    && value.len() <= MAX_LOGIN_HINT
                    && !value.chars().any(char::is_control);
                self.login_hint = Some(Some(value.to_string()).filter(|_| ok).ok_or_else(bad)?);
            }
            LoginParameter::AcrValues => self.acr_values = parse_acr_values(value).ok_or_else(bad)?,
            LoginParameter::MaxAge => self.max_age = Some(parse_max_age(value).ok_or_else(bad)?),
            LoginParameter::UiLocales => {
                self.ui_locales = parse_list(value, MAX_LOCALE, |b| b.is_ascii_alphanumeric() || b == b'-')
                    .ok_or_else(bad)?;
            }
        }
        Ok(())
    }

    /// The parameters to send to the provider, as name and value.
    pub fn provider_params(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(h) = &self.login_hint {
            out.push(("login_hint", h.clone()));
        }
        if !self.acr_values.is_empty() {
            out.push(("acr_values", self.acr_values.join(" ")));
        }
        if let Some(m) = self.max_age {
            out.push(("max_age", m.to_string()));
        }
        if !self.ui_locales.is_empty() {
            out.push(("ui_locales", self.ui_locales.join(" ")));
        }
        out
    }
}

/// A parameter name for an error text: at most 40 printable ASCII characters.
fn printable(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_graphic()).take(40).collect()
}

/// `prompt`: known values, none repeated, `none` alone.
pub fn parse_prompt(value: &str) -> Option<Vec<String>> {
    let list = parse_list(value, 16, |b| b.is_ascii_lowercase() || b == b'_')?;
    let known = list.iter().all(|p| PROMPTS.contains(&p.as_str()));
    let none_alone = !list.iter().any(|p| p == "none") || list.len() == 1;
    (known && none_alone).then_some(list)
}

/// `acr_values`: up to [`MAX_LIST_ITEMS`] values of visible ASCII without quotes or
/// backslashes (so that one can be put back into a quoted string), none repeated.
pub fn parse_acr_values(value: &str) -> Option<Vec<String>> {
    parse_list(value, MAX_ACR, is_acr_byte)
}

/// Whether `b` may appear in an `acr` value.
pub fn is_acr_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'"' && b != b'\\'
}

/// Whether `value` is one well-formed `acr` value.
pub fn is_acr_value(value: &str) -> bool {
    (1..=MAX_ACR).contains(&value.len()) && value.bytes().all(is_acr_byte)
}

/// `max_age`: a non-negative decimal integer, digits only.
pub fn parse_max_age(value: &str) -> Option<u64> {
    let ok = (1..=MAX_AGE_DIGITS).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
    if ok { value.parse().ok() } else { None }
}

/// A space-separated list of 1 to [`MAX_LIST_ITEMS`] distinct items of at most `max_item`
/// bytes that pass `byte_ok`; single spaces only.
fn parse_list(value: &str, max_item: usize, byte_ok: impl Fn(u8) -> bool) -> Option<Vec<String>> {
    let items: Vec<&str> = value.split(' ').collect();
    if items.is_empty() || items.len() > MAX_LIST_ITEMS {
        return None;
    }
    for (i, item) in items.iter().enumerate() {
        if item.is_empty()
            || item.len() > max_item
            || !item.bytes().all(&byte_ok)
            || items[..i].contains(item)
        {
            return None;
        }
    }
    Some(items.into_iter().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use LoginParameter::*;

    const ALL: &[LoginParameter] = &[Prompt, LoginHint, AcrValues, MaxAge, UiLocales];

    #[test]
    fn well_formed_parameters_are_taken() {
        let q = LoginQuery::parse(
            "returnTo=%2Fx&prompt=login+consent&login_hint=a%40b.c&acr_values=urn%3Aa+b&max_age=0&ui_locales=de-CH+en",
            ALL,
        )
        .unwrap();
        assert_eq!(q.return_to, "/x");
        assert_eq!(q.prompt, ["login", "consent"]);
        assert_eq!(q.login_hint.as_deref(), Some("a@b.c"));
        assert_eq!(q.acr_values, ["urn:a", "b"]);
        assert_eq!(q.max_age, Some(0));
        assert_eq!(q.ui_locales, ["de-CH", "en"]);
    }

    #[test]
    fn malformed_repeated_and_unlisted_parameters_are_refused() {
        for (query, want) in [
            ("prompt=none+login", LoginParamError::Malformed("prompt")),
            ("prompt=bogus", LoginParamError::Malformed("prompt")),
            ("prompt=login&prompt=login", LoginParamError::Repeated("prompt")),
            ("max_age=-1", LoginParamError::Malformed("max_age")),
            ("max_age=1e3", LoginParamError::Malformed("max_age")),
            ("max_age=99999999999", LoginParamError::Malformed("max_age")),
            ("acr_values=a%22b", LoginParamError::Malformed("acr_values")),
            ("acr_values=a++b", LoginParamError::Malformed("acr_values")),
            ("acr_values=a+a", LoginParamError::Malformed("acr_values")),
            ("login_hint=a%0Ab", LoginParamError::Malformed("login_hint")),
            ("ui_locales=d%C3%A9", LoginParamError::Malformed("ui_locales")),
            ("scope=admin", LoginParamError::NotAllowed("scope".into())),
            ("returnTo=%2Fa&returnTo=%2Fb", LoginParamError::BadReturnTo),
        ] {
            assert_eq!(LoginQuery::parse(query, ALL), Err(want), "{query}");
        }
        let long = format!("acr_values={}", "a".repeat(MAX_ACR + 1));
        assert!(LoginQuery::parse(&long, ALL).is_err());
        assert_eq!(
            LoginQuery::parse("login_hint=x", &[Prompt]),
            Err(LoginParamError::NotAllowed("login_hint".into()))
        );
    }
}
