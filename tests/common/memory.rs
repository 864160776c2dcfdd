//! What one session costs in Redis: its keys in a BFF's namespace, their `MEMORY USAGE` and
//! value lengths, and its token record read and rewritten through the library with the
//! configured session key (as an operator with the key would).

use super::apps::Stack;
use super::redis::shared;
use cloakroom::bff::keys::Keys;
use cloakroom::bff::tokens::TokenRecord;

/// One key of a session with its cost.
#[derive(Debug)]
pub struct KeyCost {
    /// The key, without the BFF's namespace.
    pub key: String,
    /// Redis's own figure (`MEMORY USAGE key SAMPLES 0`).
    pub memory: u64,
    /// The value's length for a string; for a sorted set, its members' total length.
    pub value_len: usize,
}

fn connection() -> ::redis::Connection {
    ::redis::Client::open(shared().url()).expect("redis client").get_connection().expect("redis connection")
}

fn namespace(stack: &Stack) -> String {
    format!("{}:", stack.doc["bff"]["redis_namespace"].as_str().expect("bff namespace"))
}

/// Every key of the stack's BFF with its cost, sorted by key.
pub fn bff_key_costs(stack: &Stack) -> Vec<KeyCost> {
    let ns = namespace(stack);
    let mut conn = connection();
    let keys: Vec<String> = ::redis::cmd("KEYS").arg(format!("{ns}*")).query(&mut conn).expect("KEYS");
    let mut costs: Vec<KeyCost> = keys
        .into_iter()
        .map(|k| {
            let memory: u64 = ::redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(&k)
                .arg("SAMPLES")
                .arg(0)
                .query(&mut conn)
                .expect("MEMORY");
            let kind: String = ::redis::cmd("TYPE").arg(&k).query(&mut conn).expect("TYPE");
            let value_len = match kind.as_str() {
                "string" => ::redis::cmd("STRLEN").arg(&k).query(&mut conn).expect("STRLEN"),
                "zset" => {
                    let members: Vec<String> =
                        ::redis::cmd("ZRANGE").arg(&k).arg(0).arg(-1).query(&mut conn).expect("ZRANGE");
                    members.iter().map(String::len).sum()
                }
                _ => 0,
            };
            KeyCost { key: k.trim_start_matches(&ns).to_owned(), memory, value_len }
        })
        .collect();
    costs.sort_by(|a, b| a.key.cmp(&b.key));
    costs
}

/// The library's keys for the stack's configured session key.
pub fn bff_keys(stack: &Stack) -> Keys {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(stack.doc["bff"]["session_key"].as_str().expect("session key"))
        .expect("base64 session key");
    Keys::derive(&[raw.try_into().expect("32-byte session key")], None)
}

/// The stored bytes under `key` (without the namespace).
pub fn raw_value(stack: &Stack, key: &str) -> Vec<u8> {
    let mut conn = connection();
    ::redis::cmd("GET").arg(format!("{}{key}", namespace(stack))).query(&mut conn).expect("GET")
}

/// Replaces the stored bytes under `key` (without the namespace), keeping its TTL.
pub fn set_raw_value(stack: &Stack, key: &str, value: &[u8]) {
    let mut conn = connection();
    let _: () = ::redis::cmd("SET")
        .arg(format!("{}{key}", namespace(stack)))
        .arg(value)
        .arg("KEEPTTL")
        .query(&mut conn)
        .expect("SET");
}

/// The one token record of the stack's BFF: its key and what it opens to.
pub fn the_token_record(stack: &Stack) -> (String, TokenRecord) {
    let keys = bff_keys(stack);
    let key = bff_key_costs(stack)
        .into_iter()
        .map(|c| c.key)
        .find(|k| k.starts_with("tokens:"))
        .expect("a token record");
    let (record, _) =
        cloakroom::bff::tokens::open_tokens(&keys, &key, &raw_value(stack, &key)).expect("it opens");
    (key, record)
}

/// Seals `plain` as the stack's BFF does for the record under `key`.
pub fn seal(stack: &Stack, key: &str, plain: &[u8]) -> Vec<u8> {
    bff_keys(stack).sealer.seal(key.as_bytes(), plain)
}

/// Adds to the stack's one token record an access token for one more audience (`id`, as
/// [`cloakroom::bff::tokens::Audience::id`] makes them: 8 characters), taken from the provider's
/// token response `response`, as the BFF's refresh for that audience would store it.
pub fn add_audience_token(stack: &Stack, id: &str, response: &serde_json::Value) {
    use cloakroom::bff::tokens::Audience;
    let (key, record) = the_token_record(stack);
    let mut response: cloakroom::oidc::TokenResponse =
        serde_json::from_value(response.clone()).expect("a token response");
    response.id_token = None;
    let audience =
        Audience { id: id.to_owned(), resource: Some(format!("https://{id}.example")), scope: None };
    let record = record.with_audience_response(&audience, &response, false);
    set_raw_value(stack, &key, &seal(stack, &key, &record.to_stored()));
}

/// Rewrites the session and token records of the stack's BFF as the version before the compact
/// form wrote them: sealed JSON (the token record's fields by name; the session state as
/// actix-session's map with the record as JSON text under `rec`).
pub fn rewrite_in_the_json_format(stack: &Stack) {
    let (key, record) = the_token_record(stack);
    let json = serde_json::to_vec(&record).expect("token record as JSON");
    set_raw_value(stack, &key, &seal(stack, &key, &json));
    let keys = bff_keys(stack);
    for c in bff_key_costs(stack).into_iter().filter(|c| c.key.starts_with("session:")) {
        let record = session_record(stack, &keys, &c.key);
        let state = serde_json::json!({ "rec": serde_json::to_string(&record).expect("record as JSON") });
        let plain = serde_json::to_vec(&state).expect("state as JSON");
        set_raw_value(stack, &c.key, &seal(stack, &c.key, &plain));
    }
}

/// The session record stored under `key`, through the BFF's own session store.
fn session_record(stack: &Stack, keys: &Keys, key: &str) -> cloakroom::bff::session::SessionRecord {
    let sealed = raw_value(stack, key);
    let plain = keys.sealer.open(key.as_bytes(), &sealed).expect("the session record opens");
    cloakroom::bff::session::SessionRecord::from_stored(&plain).expect("a session record")
}

/// True when the record under `key` is sealed JSON (the format before the compact one).
pub fn is_sealed_json(stack: &Stack, key: &str) -> bool {
    let plain = bff_keys(stack).sealer.open(key.as_bytes(), &raw_value(stack, key)).expect("it opens");
    plain.first() == Some(&b'{')
}
