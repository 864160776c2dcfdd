//! Request parameters (query strings and form bodies) as a map in which every name occurs at
//! most once: RFC 6749 §3.1 forbids repeated parameters, and a repeated one is a classic way
//! to make two parsers disagree. The one exception is `resource` (RFC 8707 §2), which a
//! request may repeat to name several resources: it is read only through [`Params::all`].

use std::collections::HashMap;

/// A parameter occurred more than once.
#[derive(Debug, thiserror::Error)]
#[error("parameter `{0}` is repeated")]
pub struct Repeated(pub String);

/// The parameters that may occur more than once.
const REPEATABLE: &[&str] = &["resource"];

/// Parsed `application/x-www-form-urlencoded` parameters. Empty values count as absent.
#[derive(Default)]
pub struct Params(HashMap<String, Vec<String>>);

impl std::fmt::Debug for Params {
    // Values may be secrets (passwords, codes, tokens): only names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Params {
    /// Parses a query string or form body.
    pub fn parse(input: &[u8]) -> Result<Self, Repeated> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(input) {
            let values = map.entry(k.to_string()).or_default();
            if !values.is_empty() && !REPEATABLE.contains(&k.as_ref()) {
                return Err(Repeated(k.into_owned()));
            }
            values.push(v.into_owned());
        }
        Ok(Self(map))
    }

    /// The value of `name`, if present once and not empty (a repeatable name given more than
    /// once has no single value).
    pub fn get(&self, name: &str) -> Option<&str> {
        match self.0.get(name).map(Vec::as_slice) {
            Some([one]) if !one.is_empty() => Some(one),
            _ => None,
        }
    }

    /// Every value of `name` (a repeatable one), empty ones included, in order.
    pub fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether `name` is present (even if empty).
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The names present.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The parameters but those named in `except`, form-encoded.
    pub fn encode_except(&self, except: &[&str]) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, values) in self.0.iter().filter(|(k, _)| !except.contains(&k.as_str())) {
            for v in values {
                out.append_pair(k, v);
            }
        }
        out.finish()
    }

    /// Sets `name` to `value`.
    pub fn insert(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_string(), vec![value.to_string()]);
    }
}

/// Splits a space-separated scope string into its distinct values, in order.
pub fn split_scope(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_parameter_is_refused() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert!(p.has("b"));
        assert_eq!(p.get("c"), Some("x y"));
    }

    #[test]
    fn resource_may_repeat_and_survives_encoding() {
        let p = Params::parse(b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb&x=1").unwrap();
        assert_eq!(p.all("resource"), ["https://a", "https://b"]);
        assert_eq!(p.get("resource"), None, "two values are no single value");
        let again = Params::parse(p.encode_except(&["x"]).as_bytes()).unwrap();
        assert_eq!(again.all("resource"), ["https://a", "https://b"]);
        assert!(!again.has("x"));
    }

    #[test]
    fn scopes_are_split_and_deduplicated() {
        assert_eq!(split_scope("openid  profile openid"), vec!["openid", "profile"]);
    }
}
