//! The README is the configuration reference a team adopts cloakroom by: every key the
//! configuration reads (a `pub` field of a deserialised struct in `src/config/`) is named there.
//! Checked on the source, like tests/architecture.rs.

use std::path::Path;

/// `(file, struct, key)` of every key: the fields of the `Deserialize` structs in
/// `src/config/`, without `#[serde(flatten)]` ones (their own struct's fields are the keys) and
/// without the structs read through another (`try_from`: the raw struct's fields are the keys).
fn config_keys() -> Vec<(String, String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config");
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("src/config") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(&path).expect("read source");
        keys.extend(keys_of(&text).into_iter().map(|(s, k)| (file.clone(), s, k)));
    }
    keys
}

/// `(struct, key)` pairs of one source file.
fn keys_of(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut keys = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let declared = lines[i].strip_prefix("pub ").unwrap_or(lines[i]).strip_prefix("struct ");
        let Some(name) = declared.and_then(|r| r.strip_suffix(" {")) else {
            i += 1;
            continue;
        };
        let attrs = lines[..i].iter().rev().take_while(|l| l.starts_with("#[") || l.starts_with("///"));
        let read_through_another = attrs.clone().any(|l| l.contains("try_from"));
        let deserialised = attrs.clone().any(|l| l.contains("Deserialize")) && !read_through_another;
        i += 1;
        let mut flatten = false;
        while i < lines.len() && lines[i] != "}" {
            let line = lines[i].trim();
            if line.starts_with("#[serde(") && line.contains("flatten") {
                flatten = true;
            } else if let Some(field) = field_name(line) {
                if deserialised && !flatten {
                    keys.push((name.to_string(), field.to_string()));
                }
                flatten = false;
            }
            i += 1;
        }
    }
    keys
}

/// The field a line of a struct body declares (`pub name: Type,` or `name: Type,`).
fn field_name(line: &str) -> Option<&str> {
    let (name, _) = line.strip_prefix("pub ").unwrap_or(line).split_once(':')?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
        .then_some(name)
}

/// Whether the README names `key`: as a table's key (`` `key` `` or `` `section.key` ``), a
/// section (`[bff.key]`) or a line of an example (`key = …`).
fn documented(readme: &str, key: &str) -> bool {
    [format!("`{key}`"), format!(".{key}`"), format!(".{key}]"), format!("\n{key} = ")]
        .iter()
        .any(|p| readme.contains(p.as_str()))
}

#[test]
fn every_configuration_key_is_named_in_the_readme() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");

    let missing: Vec<String> = config_keys()
        .into_iter()
        .filter(|(_, _, key)| !documented(&readme, key))
        .map(|(file, s, key)| format!("{file}: {s}.{key}"))
        .collect();

    assert!(missing.is_empty(), "keys the README does not name: {missing:?}");
}

#[test]
fn the_check_finds_the_keys_of_every_section_and_skips_flattened_fields() {
    let keys: Vec<String> = config_keys().into_iter().map(|(_, _, k)| k).collect();

    for known in
        ["listen", "idle_timeout_secs", "redis_wait_replicas", "client_auth", "resource", "dir", "csp"]
    {
        assert!(keys.iter().any(|k| k == known), "{known} not found among {keys:?}");
    }
    assert!(!keys.iter().any(|k| k == "store"), "a flattened field is not a key");
    assert!(!keys.iter().any(|k| k == "message"), "ConfigError is not configuration");
    assert!(!keys.iter().any(|k| k == "source"), "FrontendConfig is read through RawFrontend");
}

#[test]
fn the_check_sees_a_key_the_readme_does_not_name() {
    let readme = "| `listen` | … |\n[bff.oidc]\nissuer = \"x\"\n";

    assert!(documented(readme, "listen") && documented(readme, "oidc") && documented(readme, "issuer"));
    assert!(!documented(readme, "listen_backlog"));
    assert!(!documented(readme, "suer"), "a key is matched whole, not as a suffix");
}
