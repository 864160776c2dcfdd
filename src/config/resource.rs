//! OAuth values a route names: an RFC 8707 resource indicator and RFC 6749 scope tokens.

use serde::{Deserialize, Deserializer};

/// An RFC 8707 resource indicator: an absolute URI without a fragment (`https://api.example`),
/// kept exactly as written, since providers compare it as a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceIndicator(String);

impl ResourceIndicator {
    /// Parses and checks an indicator.
    pub fn parse(s: &str) -> Result<Self, String> {
        let url = url::Url::parse(s).map_err(|e| format!("`{s}` is not an absolute URI: {e}"))?;
        if url.fragment().is_some() || s.contains('#') {
            return Err(format!("`{s}` must not have a fragment (RFC 8707)"));
        }
        if url.cannot_be_a_base() && url.scheme() != "urn" {
            return Err(format!("`{s}` is not an absolute URI"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{s}` must not contain spaces"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The indicator as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ResourceIndicator {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// One scope token (RFC 6749 §3.3: printable ASCII but space, `"` and `\`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeToken(String);

impl ScopeToken {
    /// Parses and checks a scope token.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !ok {
            return Err(format!("`{s}` is not a scope token (printable ASCII without space, `\"` or `\\`)"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ScopeToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_indicators_are_absolute_uris_without_fragments() {
        assert!(ResourceIndicator::parse("https://api.example").is_ok());
        assert!(ResourceIndicator::parse("urn:example:notes").is_ok());
        assert!(ResourceIndicator::parse("https://api.example/#x").is_err());
        assert!(ResourceIndicator::parse("/relative").is_err());
        assert!(ResourceIndicator::parse("").is_err());
    }

    #[test]
    fn scope_tokens_refuse_spaces_quotes_and_backslashes() {
        assert!(ScopeToken::parse("notes:read").is_ok());
        for bad in ["", "a b", "a\"b", "a\\b", "é"] {
            assert!(ScopeToken::parse(bad).is_err(), "{bad}");
        }
    }
}
