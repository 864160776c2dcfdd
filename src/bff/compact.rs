//! Tokens and random ids as the store keeps them inside records: text made of base64url segments
//! joined by dots (a JWS or JWE in compact form, an opaque base64url token, a random id) is kept
//! as the decoded bytes of each segment — a quarter smaller — and given back byte for byte; any
//! other text is kept as it is. A token that shares most of its bytes with another one of the same
//! record (two access tokens from one provider: same header, mostly the same claims) can be kept
//! as its [`Delta`] from it. A leaf: the session and token records both use it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// A piece of text in its stored form. No `Debug`: it holds secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Packed {
    /// Text that is not made of canonical base64url segments, kept as it is.
    Text(String),
    /// The decoded bytes of each dot-separated base64url segment.
    Segments(Vec<Vec<u8>>),
}

impl Packed {
    /// The stored form of `text`: its segments decoded when every one of them is canonical
    /// base64url without padding (so that encoding them again gives `text` back exactly).
    pub fn of(text: &str) -> Self {
        let decoded: Option<Vec<Vec<u8>>> = text.split('.').map(decode_exactly).collect();
        match decoded {
            Some(segments) if !text.is_empty() => Self::Segments(segments),
            _ => Self::Text(text.to_owned()),
        }
    }

    /// The text it was made from.
    pub fn text(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Segments(segments) => {
                let len = segments.iter().map(|s| s.len().div_ceil(3) * 4 + 1).sum();
                let mut out = String::with_capacity(len);
                for (i, s) in segments.iter().enumerate() {
                    if i > 0 {
                        out.push('.');
                    }
                    URL_SAFE_NO_PAD.encode_string(s, &mut out);
                }
                out
            }
        }
    }
}

/// A [`Packed`] text kept as its difference from another one (its base).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delta {
    /// Segment by segment: how many bytes it shares with the base's segment at the start and at
    /// the end, and its bytes between.
    Segments(Vec<(u32, u32, Vec<u8>)>),
    /// Not comparable with the base (text, or another number of segments): kept whole.
    Whole(Packed),
}

impl Delta {
    /// `packed` as its difference from `base`.
    pub fn of(packed: Packed, base: &Packed) -> Self {
        match (&packed, base) {
            (Packed::Segments(own), Packed::Segments(theirs)) if own.len() == theirs.len() => {
                Self::Segments(own.iter().zip(theirs).map(|(o, t)| segment_delta(o, t)).collect())
            }
            _ => Self::Whole(packed),
        }
    }

    /// The text's stored form again, given the same `base`; `None` when it does not fit `base`.
    pub fn resolve(self, base: &Packed) -> Option<Packed> {
        let segments = match (self, base) {
            (Self::Whole(packed), _) => return Some(packed),
            (Self::Segments(own), Packed::Segments(theirs)) if own.len() == theirs.len() => own,
            _ => return None,
        };
        let Packed::Segments(theirs) = base else { return None };
        let mut out = Vec::with_capacity(segments.len());
        for ((prefix, suffix, middle), base) in segments.into_iter().zip(theirs) {
            let (prefix, suffix) = (prefix as usize, suffix as usize);
            let tail = base.len().checked_sub(suffix).filter(|t| *t >= prefix)?;
            out.push([&base[..prefix], &middle[..], &base[tail..]].concat());
        }
        Some(Packed::Segments(out))
    }
}

/// How `own` differs from `base`: shared start, shared end (not overlapping), bytes between.
fn segment_delta(own: &[u8], base: &[u8]) -> (u32, u32, Vec<u8>) {
    let shared = |a: &mut dyn Iterator<Item = (&u8, &u8)>| a.take_while(|(x, y)| x == y).count();
    let limit = own.len().min(base.len()).min(u32::MAX as usize);
    let prefix = shared(&mut own.iter().zip(base)).min(limit);
    let suffix = shared(&mut own.iter().rev().zip(base.iter().rev())).min(limit - prefix);
    (prefix as u32, suffix as u32, own[prefix..own.len() - suffix].to_vec())
}

/// The bytes of `segment` when it is canonical base64url without padding.
fn decode_exactly(segment: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    (URL_SAFE_NO_PAD.encode(&bytes) == segment).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_segments_are_stored_decoded_and_given_back_exactly() {
        let jws = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        let packed = Packed::of(jws);
        assert!(matches!(&packed, Packed::Segments(s) if s.len() == 3));
        assert_eq!(packed.text(), jws);
        let opaque = crate::crypto::random_token(32);
        assert!(matches!(Packed::of(&opaque), Packed::Segments(s) if s.len() == 1 && s[0].len() == 32));
        assert_eq!(Packed::of(&opaque).text(), opaque);
        assert_eq!(Packed::of("a..b").text(), "a..b", "an empty segment is a segment");
    }

    #[test]
    fn a_token_kept_as_its_difference_from_another_comes_back_exactly() {
        let base = Packed::of("eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJhIiwic3ViIjoiYWxpY2UifQ.c2lnbmF0dXJl");
        let own = Packed::of("eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJiYmIiLCJzdWIiOiJhbGljZSJ9.b3RoZXI");
        let delta = Delta::of(own.clone(), &base);
        let Delta::Segments(parts) = &delta else { panic!("comparable tokens give a delta") };
        assert!(parts[0].2.is_empty(), "the same header costs nothing");
        assert_eq!(delta.resolve(&base).unwrap().text(), own.text());
        let same = Delta::of(base.clone(), &base);
        assert_eq!(same.resolve(&base).unwrap().text(), base.text());
        let text = Packed::of("not a jws");
        assert!(matches!(Delta::of(text.clone(), &base), Delta::Whole(_)));
        assert_eq!(Delta::of(text, &base).resolve(&base).unwrap().text(), "not a jws");
        let short = Delta::Segments(vec![(5, 5, Vec::new())]);
        assert!(short.resolve(&Packed::of("YWJj")).is_none(), "lengths beyond the base are refused");
    }

    #[test]
    fn text_that_is_not_canonical_base64url_is_stored_as_it_is() {
        for text in ["", "not a token", "a+b/c", "YQ==", "YR", "EdDSA.abc", "abc.", "x"] {
            let packed = Packed::of(text);
            assert_eq!(packed.text(), text);
            if ["", "not a token", "a+b/c", "YQ==", "YR", "x"].contains(&text) {
                assert!(matches!(packed, Packed::Text(_)), "{text:?} is kept as text");
            }
        }
    }
}
