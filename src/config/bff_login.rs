//! `bff.login_parameters`: the OpenID Connect authorization-request parameters `/bff/login`
//! passes from its query to the provider.

use serde::Deserialize;

/// `bff.login_parameters[]`: an OpenID Connect authorization-request parameter a page may pass
/// through `/bff/login` (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginParameter {
    /// `prompt`: `none`, `login`, `consent`, `select_account`.
    Prompt,
    /// `login_hint`: the account to prefill at the provider.
    LoginHint,
    /// `acr_values`: the authentication context classes asked for.
    AcrValues,
    /// `max_age`: the longest time since the user last authenticated.
    MaxAge,
    /// `ui_locales`: the languages of the provider's pages.
    UiLocales,
}

impl LoginParameter {
    /// The parameter's name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Prompt => "prompt",
            Self::LoginHint => "login_hint",
            Self::AcrValues => "acr_values",
            Self::MaxAge => "max_age",
            Self::UiLocales => "ui_locales",
        }
    }
}

/// Default login parameters: those that only ask the provider for more (a fresh or stronger
/// authentication, a language). `login_hint` is left out: it usually carries an e-mail address,
/// which would then sit in browser histories and access logs.
pub(super) fn default_login_parameters() -> Vec<LoginParameter> {
    use LoginParameter::*;
    vec![Prompt, AcrValues, MaxAge, UiLocales]
}

/// The login parameters, refused when one is listed twice.
pub(super) fn login_parameters<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<LoginParameter>, D::Error> {
    let list = Vec::<LoginParameter>::deserialize(d)?;
    for (i, p) in list.iter().enumerate() {
        if list[..i].contains(p) {
            return Err(serde::de::Error::custom(format!("`{}` is listed twice", p.name())));
        }
    }
    Ok(list)
}
