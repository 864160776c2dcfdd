//! The layout's rules, checked on the source (docs/ARCHITECTURE.md "Invariants"): inside a
//! program no two files import each other, directly or around a circle; the shared pieces never
//! import a program; the BFF never imports the auth server. A file's imports are the
//! `crate::…`, `super::…` and `self::…` paths it names outside its unit tests and comments,
//! resolved to the file that defines the longest matching module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`bff::session::store`) → file.
fn modules(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("below src").with_extension("");
                let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                if parts.last().is_some_and(|l| l == "mod") || parts == ["lib"] || parts == ["main"] {
                    parts.pop();
                }
                out.insert(parts.join("::"), path);
            }
        }
    }
    out
}

/// The source without comments and without its `#[cfg(test)] mod tests { … }` tail.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Every `crate::a::b`, `super::super::c` or `self::d` path in `code`, as its segments.
fn paths(code: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start).map(|i| i + from) {
            from = i + start.len();
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
                continue;
            }
            let end = code[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| i + e);
            out.push(code[i..end].split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect());
        }
    }
    out
}

/// The module a path in module `current` leads to, if it is one of `modules`.
fn resolve(current: &str, path: &[String], modules: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut base: Vec<&str> = if current.is_empty() { vec![] } else { current.split("::").collect() };
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        _ => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
    }
    (0..=rest.len())
        .rev()
        .map(|n| {
            base.iter().copied().chain(rest[..n].iter().map(String::as_str)).collect::<Vec<_>>().join("::")
        })
        .find(|m| modules.contains_key(m))
}

/// File-level import edges, parents (a module's own `mod.rs`) excluded.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut edges = BTreeMap::new();
    for (module, file) in &modules {
        let targets: BTreeSet<String> = paths(&code_of(file))
            .iter()
            .filter_map(|p| resolve(module, p, &modules))
            .filter(|t| !t.is_empty() && t != module && !module.starts_with(&format!("{t}::")))
            .collect();
        edges.insert(module.clone(), targets);
    }
    edges
}

/// The strongly connected components with more than one module (Tarjan).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let i = w.index.len();
        w.index.insert(v, i);
        w.low.insert(v, i);
        w.stack.push(v);
        for t in w.edges.get(v).into_iter().flatten() {
            let t = t.as_str();
            if !w.index.contains_key(t) {
                visit(w, t);
                let low = w.low[v].min(w.low[t]);
                w.low.insert(v, low);
            } else if w.stack.contains(&t) {
                let low = w.low[v].min(w.index[t]);
                w.low.insert(v, low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut component = Vec::new();
            while let Some(t) = w.stack.pop() {
                component.push(t.to_owned());
                if t == v {
                    break;
                }
            }
            if component.len() > 1 {
                w.found.push(component);
            }
        }
    }
    let mut walk =
        Walk { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            visit(&mut walk, v);
        }
    }
    walk.found
}

#[test]
fn no_two_files_import_each_other_directly_or_around_a_circle() {
    let found = circles(&graph());

    assert!(found.is_empty(), "import circles between files: {found:?}");
}

#[test]
fn the_shared_pieces_never_import_a_program_and_the_bff_never_imports_the_auth_server() {
    let programs = ["bff", "auth_server", "resource_server"];
    let shared = ["config", "store", "jwt", "oidc", "web", "crypto", "telemetry", "startup", "clock"];

    let edges = graph();

    for (module, targets) in &edges {
        let top = module.split("::").next().unwrap_or("");
        for target in targets {
            let target_top = target.split("::").next().unwrap_or("");
            if shared.contains(&top) {
                assert!(!programs.contains(&target_top), "{module} (shared) imports {target}");
            }
            if top == "bff" {
                assert_ne!(target_top, "auth_server", "{module} imports {target}");
            }
        }
    }
}

#[test]
fn the_checks_see_a_circle_when_there_is_one() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
        ("d".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into_iter()
    .collect();

    let found = circles(&edges);

    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from(["a".into(), "b".into(), "c".into()])
    );
}
