//! The stored form of a token record (before sealing): a format byte, then the record in
//! postcard (no field names, varint times) with every token [`Packed`] — a JWS kept as the bytes
//! of its segments — and the audiences' tokens (and the ID token) as their [`Delta`] from the
//! login's access token, with which they share their header and most claims. Records written as JSON by earlier versions (they start with `{`) are still
//! read; only this form is written.

use super::{AudienceToken, TokenRecord};
use crate::bff::compact::{Delta, Packed};
use crate::config::Secret;
use crate::jwt::dpop::DpopKey;
use serde::{Deserialize, Serialize};

/// First byte of a record in this form (JSON records start with `{`).
const FORMAT: u8 = 1;

/// One access token with its times.
#[derive(Serialize, Deserialize)]
struct StoredAccess<T> {
    token: T,
    expires_at: i64,
    issued_at: i64,
}

/// [`TokenRecord`] field for field, in order; fields are only ever added at the end.
#[derive(Serialize, Deserialize)]
struct StoredTokens {
    access: StoredAccess<Packed>,
    refresh_token: Option<Packed>,
    refresh_expires_at: Option<i64>,
    id_token: Option<Delta>,
    session_expires_at: i64,
    dpop_key: Option<DpopKey>,
    audiences: Vec<(String, StoredAccess<Delta>)>,
}

fn pack(s: &Secret) -> Packed {
    Packed::of(s.expose())
}

fn unpack(p: &Packed) -> Secret {
    Secret::new(p.text())
}

fn unpack_from(d: Delta, base: &Packed) -> Option<Secret> {
    d.resolve(base).map(|p| unpack(&p))
}

impl TokenRecord {
    /// The record as stored (sealed afterwards).
    pub fn to_stored(&self) -> Vec<u8> {
        let base = pack(&self.access_token);
        let like_base = |s: &Secret| Delta::of(pack(s), &base);
        let stored = StoredTokens {
            id_token: self.id_token.as_ref().map(like_base),
            audiences: self
                .audiences
                .iter()
                .map(|a| {
                    let token = like_base(&a.access_token);
                    (a.id.clone(), StoredAccess { token, expires_at: a.expires_at, issued_at: a.issued_at })
                })
                .collect(),
            access: StoredAccess {
                token: base.clone(),
                expires_at: self.access_expires_at,
                issued_at: self.access_issued_at,
            },
            refresh_token: self.refresh_token.as_ref().map(pack),
            refresh_expires_at: self.refresh_expires_at,
            session_expires_at: self.session_expires_at,
            dpop_key: self.dpop_key.clone(),
        };
        // Serialising to a vector fails only when out of memory.
        postcard::to_extend(&stored, vec![FORMAT]).unwrap_or_default()
    }

    /// The record stored as `plain` (this form, or the JSON of earlier versions).
    pub fn from_stored(plain: &[u8]) -> Option<Self> {
        match plain.split_first()? {
            (&FORMAT, rest) => Self::from_compact(postcard::from_bytes::<StoredTokens>(rest).ok()?),
            (b'{', _) => serde_json::from_slice(plain).ok(),
            _ => None,
        }
    }
}

impl TokenRecord {
    fn from_compact(s: StoredTokens) -> Option<Self> {
        let base = &s.access.token;
        let audiences = s
            .audiences
            .into_iter()
            .map(|(id, a)| {
                let access_token = unpack_from(a.token, base)?;
                Some(AudienceToken { id, access_token, expires_at: a.expires_at, issued_at: a.issued_at })
            })
            .collect::<Option<Vec<_>>>()?;
        let id_token = match s.id_token {
            Some(d) => Some(unpack_from(d, base)?),
            None => None,
        };
        Some(Self {
            access_token: unpack(base),
            access_expires_at: s.access.expires_at,
            access_issued_at: s.access.issued_at,
            refresh_token: s.refresh_token.as_ref().map(unpack),
            refresh_expires_at: s.refresh_expires_at,
            id_token,
            session_expires_at: s.session_expires_at,
            dpop_key: s.dpop_key,
            audiences,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWS: &str = "eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJhIiwiZXhwIjoxfQ.c2lnbmF0dXJlIG9uZQ";
    const OTHER_JWS: &str = "eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJiIiwiZXhwIjoyfQ.c2lnbmF0dXJlIHR3bw";

    fn full() -> TokenRecord {
        TokenRecord {
            access_token: Secret::new(JWS),
            access_expires_at: 1_796_505_233,
            access_issued_at: 1_796_504_933,
            refresh_token: Some(Secret::new(crate::crypto::random_token(32))),
            refresh_expires_at: Some(1_799_096_933),
            id_token: Some(Secret::new(OTHER_JWS)),
            session_expires_at: 1_796_548_133,
            dpop_key: Some(DpopKey::generate(crate::jwt::dpop::DpopAlg::EdDsa)),
            audiences: vec![
                AudienceToken {
                    id: "aaaaaaaa".into(),
                    access_token: Secret::new(OTHER_JWS),
                    expires_at: 5,
                    issued_at: 4,
                },
                AudienceToken {
                    id: "bbbbbbbb".into(),
                    access_token: Secret::new("opaque!"),
                    expires_at: 7,
                    issued_at: 6,
                },
            ],
        }
    }

    fn same(a: &TokenRecord, b: &TokenRecord) {
        assert_eq!(serde_json::to_value(a).unwrap(), serde_json::to_value(b).unwrap());
    }

    #[test]
    fn a_record_comes_back_from_its_stored_form_exactly_and_smaller_than_its_json() {
        let record = full();

        let stored = record.to_stored();

        same(&TokenRecord::from_stored(&stored).unwrap(), &record);
        assert_eq!(stored[0], FORMAT);
        assert!(stored.len() * 3 < serde_json::to_vec(&record).unwrap().len() * 2, "{} bytes", stored.len());
        let bare = TokenRecord {
            refresh_token: None,
            refresh_expires_at: None,
            id_token: None,
            dpop_key: None,
            audiences: vec![],
            ..record
        };
        same(&TokenRecord::from_stored(&bare.to_stored()).unwrap(), &bare);
    }

    #[test]
    fn a_record_written_as_json_by_an_earlier_version_is_read() {
        let record = full();
        let json = serde_json::to_vec(&record).unwrap();
        let before_audiences = br#"{"access_token":"a","access_expires_at":2,"access_issued_at":1,"refresh_token":"r","refresh_expires_at":null,"id_token":null,"session_expires_at":3}"#;

        same(&TokenRecord::from_stored(&json).unwrap(), &record);
        let old = TokenRecord::from_stored(before_audiences).unwrap();
        assert_eq!((old.access_token.expose(), old.audiences.len()), ("a", 0));
    }

    #[test]
    fn anything_else_is_not_a_record() {
        for plain in [&b""[..], b"[1]", &[FORMAT], &[FORMAT, 0xff, 0xff], &[9, 1, 2]] {
            assert!(TokenRecord::from_stored(plain).is_none(), "{plain:?}");
        }
        let mut truncated = full().to_stored();
        truncated.truncate(truncated.len() - 3);
        assert!(TokenRecord::from_stored(&truncated).is_none());
    }
}
