//! A request path below a frontend's prefix becomes a relative file path here, or nothing: every
//! segment is percent-decoded once and must be a plain name — no empty, `.` or `..` segment, no
//! hidden (dot) file, no separator, backslash or control character after decoding. What the
//! file system then makes of it (symbolic links) is checked by the caller against the root.

use percent_encoding::percent_decode_str;
use std::path::PathBuf;

/// The relative file path for `rest` (the request path after the prefix, still
/// percent-encoded), or `None` when it names nothing a frontend serves. A trailing slash (or an
/// empty `rest`) names the directory's `index.html`.
pub fn relative_file(rest: &str) -> Option<PathBuf> {
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let (dirs, name) = match rest.rsplit_once('/') {
        Some((dirs, name)) => (Some(dirs), name),
        None => (None, rest),
    };
    let mut path = PathBuf::new();
    for segment in dirs.into_iter().flat_map(|d| d.split('/')) {
        path.push(plain_name(segment)?);
    }
    path.push(if name.is_empty() { "index.html".to_string() } else { plain_name(name)? });
    Some(path)
}

/// One decoded path segment, when it is a plain visible name.
fn plain_name(segment: &str) -> Option<String> {
    let decoded = percent_decode_str(segment).decode_utf8().ok()?;
    let plain = !decoded.is_empty()
        && !decoded.starts_with('.')
        && !decoded.chars().any(|c| c == '/' || c == '\\' || c.is_control());
    plain.then(|| decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_and_directory_indexes_map_to_files_below_the_root() {
        assert_eq!(relative_file(""), Some(PathBuf::from("index.html")));
        assert_eq!(relative_file("/"), Some(PathBuf::from("index.html")));
        assert_eq!(
            relative_file("/assets/index-BXa1c2De.js"),
            Some(PathBuf::from("assets/index-BXa1c2De.js"))
        );
        assert_eq!(relative_file("/docs/"), Some(PathBuf::from("docs/index.html")));
        assert_eq!(relative_file("/caf%C3%A9.txt"), Some(PathBuf::from("café.txt")));
    }

    #[test]
    fn traversal_hidden_files_and_encoded_separators_name_nothing() {
        for bad in [
            "/../etc/passwd",
            "/assets/../../x",
            "/%2e%2e/x",
            "/.env",
            "/.git/config",
            "/assets/.hidden",
            "/a%2fb",
            "/a%5cb",
            "/a\\b",
            "//x",
            "/a//b",
            "/x%00.js",
            "/%ff",
            "/./index.html",
        ] {
            assert_eq!(relative_file(bad), None, "{bad}");
        }
    }
}
