//! The stored form of a session's state (before sealing). actix-session hands the store a map of
//! JSON texts; the BFF's is always one record under [`RECORD_KEY`], which is stored as a format
//! byte and the record in postcard (no field names, no JSON escaped inside JSON, varint times,
//! random ids and tokens [`Packed`] as bytes). Any other state, and every state written by earlier
//! versions, is the JSON map (it starts with `{`), which is still read.

use super::client_info::ClientInfo;
use super::record::{RECORD_KEY, SessionRecord};
use crate::bff::compact::Packed;
use crate::bff::tokens::TokenHandle;
use crate::config::Secret;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// actix-session's state: JSON texts by key.
pub type SessionState = HashMap<String, String>;

/// First byte of a state in this form (a JSON map starts with `{`).
const FORMAT: u8 = 1;

/// [`SessionRecord`] field for field; fields are only ever added at the end.
#[derive(Serialize, Deserialize)]
struct StoredSession {
    handle: Packed,
    sub: Packed,
    sid: Option<Packed>,
    /// The profile claims as JSON, without `sub` when it is the record's own (`claims_sub`).
    claims: String,
    claims_sub: bool,
    created_at: i64,
    expires_at: i64,
    idle_expires_at: i64,
    csrf_token: Packed,
    public_id: Packed,
    last_seen: i64,
    ua_family: String,
    ip_range: String,
    acr: Option<String>,
    amr: Option<Vec<String>>,
    auth_time: Option<i64>,
}

/// The state as stored: the compact record when the state is exactly one record, else JSON.
pub fn encode_state(state: &SessionState) -> Result<Vec<u8>, serde_json::Error> {
    match SessionRecord::from_state(state).filter(|_| state.len() == 1) {
        Some(record) => encode_record(&record),
        None => serde_json::to_vec(state),
    }
}

/// The stored state of a session holding just `record`.
pub fn encode_record(record: &SessionRecord) -> Result<Vec<u8>, serde_json::Error> {
    let mut claims = record.claims.clone();
    let claims_sub = claims.get("sub").and_then(|s| s.as_str()) == Some(record.sub.as_str());
    if claims_sub {
        claims.remove("sub");
    }
    let stored = StoredSession {
        handle: Packed::of(record.handle.expose()),
        sub: Packed::of(&record.sub),
        sid: record.sid.as_deref().map(Packed::of),
        claims: serde_json::to_string(&claims)?,
        claims_sub,
        created_at: record.created_at,
        expires_at: record.expires_at,
        idle_expires_at: record.idle_expires_at,
        csrf_token: Packed::of(record.csrf_token.expose()),
        public_id: Packed::of(&record.public_id),
        last_seen: record.last_seen,
        ua_family: record.client.ua_family.clone(),
        ip_range: record.client.ip_range.clone(),
        acr: record.acr.clone(),
        amr: record.amr.clone(),
        auth_time: record.auth_time,
    };
    // Serialising to a vector fails only when out of memory.
    Ok(postcard::to_extend(&stored, vec![FORMAT]).unwrap_or_default())
}

/// The state stored as `plain` (either form) and the record in it, if any.
pub fn decode_state(plain: &[u8]) -> Option<(SessionState, Option<SessionRecord>)> {
    match plain.split_first()? {
        (&FORMAT, rest) => {
            let record = decode_record(postcard::from_bytes(rest).ok()?)?;
            let state = HashMap::from([(RECORD_KEY.to_owned(), serde_json::to_string(&record).ok()?)]);
            Some((state, Some(record)))
        }
        (b'{', _) => {
            let state: SessionState = serde_json::from_slice(plain).ok()?;
            let record = SessionRecord::from_state(&state);
            Some((state, record))
        }
        _ => None,
    }
}

fn decode_record(s: StoredSession) -> Option<SessionRecord> {
    let sub = s.sub.text();
    let mut claims: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&s.claims).ok()?;
    if s.claims_sub {
        claims.insert("sub".to_owned(), serde_json::Value::String(sub.clone()));
    }
    Some(SessionRecord {
        handle: TokenHandle::from_stored(s.handle.text()),
        sub,
        sid: s.sid.as_ref().map(Packed::text),
        claims,
        created_at: s.created_at,
        expires_at: s.expires_at,
        idle_expires_at: s.idle_expires_at,
        csrf_token: Secret::new(s.csrf_token.text()),
        public_id: s.public_id.text(),
        last_seen: s.last_seen,
        client: ClientInfo { ua_family: s.ua_family, ip_range: s.ip_range },
        acr: s.acr,
        amr: s.amr,
        auth_time: s.auth_time,
    })
}

impl SessionRecord {
    /// The record in a session's stored state `plain` (either form; opened, not sealed), if any:
    /// for tools that read the store with the session key.
    pub fn from_stored(plain: &[u8]) -> Option<Self> {
        decode_state(plain)?.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SessionRecord {
        let claims = serde_json::json!({"name": "alice", "preferred_username": "alice", "sub": "WhyaS5fD17g88p5xJjYXag"});
        SessionRecord {
            handle: TokenHandle::random(),
            sub: "WhyaS5fD17g88p5xJjYXag".into(),
            sid: Some("QBkKnaIWTn08twIUf9_lEw".into()),
            claims: claims.as_object().unwrap().clone(),
            created_at: 1_796_504_933,
            expires_at: 1_796_548_133,
            idle_expires_at: 1_796_506_733,
            csrf_token: Secret::new(crate::crypto::random_token(32)),
            public_id: crate::crypto::random_token(16),
            last_seen: 1_796_504_933,
            client: ClientInfo { ua_family: "Firefox".into(), ip_range: "127.0.0.0/24".into() },
            acr: Some("urn:cloakroom:pwd".into()),
            amr: Some(vec!["pwd".into()]),
            auth_time: Some(1_796_504_933),
        }
    }

    fn state_of(record: &SessionRecord) -> SessionState {
        HashMap::from([(RECORD_KEY.to_owned(), serde_json::to_string(record).unwrap())])
    }

    fn json(record: &SessionRecord) -> serde_json::Value {
        serde_json::to_value(record).unwrap()
    }

    #[test]
    fn a_session_state_comes_back_from_its_stored_form_and_is_half_its_json() {
        let record = record();
        let state = state_of(&record);

        let stored = encode_state(&state).unwrap();

        let (back, parsed) = decode_state(&stored).unwrap();
        assert_eq!(json(&SessionRecord::from_state(&back).unwrap()), json(&record));
        assert_eq!(json(&parsed.unwrap()), json(&record));
        assert_eq!(stored[0], FORMAT);
        assert!(stored.len() * 2 < serde_json::to_vec(&state).unwrap().len(), "{} bytes", stored.len());
    }

    #[test]
    fn claims_keep_a_sub_that_differs_from_the_record_and_lack_one_they_lacked() {
        let mut other = record();
        other.claims.insert("sub".into(), "someone-else".into());
        let mut without = record();
        without.claims.remove("sub");

        for r in [other, without] {
            let back = SessionRecord::from_stored(&encode_record(&r).unwrap()).unwrap();
            assert_eq!(json(&back), json(&r));
        }
    }

    #[test]
    fn a_state_written_as_json_by_an_earlier_version_is_read() {
        let record = record();
        let state = state_of(&record);
        let legacy = serde_json::to_vec(&state).unwrap();

        let (back, parsed) = decode_state(&legacy).unwrap();

        assert_eq!(back, state);
        assert_eq!(json(&parsed.unwrap()), json(&record));
    }

    #[test]
    fn a_state_that_is_not_one_record_is_kept_as_json() {
        let mut state = state_of(&record());
        state.insert("other".into(), "1".into());
        let empty = SessionState::new();

        for s in [state, empty] {
            let stored = encode_state(&s).unwrap();
            assert_eq!(stored.first(), Some(&b'{'));
            let (back, _) = decode_state(&stored).unwrap();
            assert_eq!(back, s);
        }
        assert!(decode_state(&[FORMAT, 0xff]).is_none());
        assert!(decode_state(b"").is_none());
    }
}
