//! Client-facing resource URIs.
//!
//! In the merged view a backend's resource URI `U` is shown as `mcpmux://{prefix}/U`, and a URI
//! template `T` as `mcpmux://{prefix}/T`. The prefix is a plain name (`[A-Za-z0-9_-]`), so the
//! wrapped template is still a valid RFC 6570 template: the added part is literal text, and any
//! URI a client expands from it starts with the same literal, so it routes back to the backend
//! by stripping it. Nothing inside `U` is touched or re-encoded.

/// The scheme of wrapped URIs.
pub const SCHEME: &str = "mcpmux";

/// Wraps a backend URI (or template) for the merged view.
pub fn wrap(prefix: &str, uri: &str) -> String {
    format!("{SCHEME}://{prefix}/{uri}")
}

/// Splits a wrapped URI into `(prefix, backend URI)`.
pub fn unwrap(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix(SCHEME)?.strip_prefix("://")?;
    let (prefix, original) = rest.split_once('/')?;
    (!prefix.is_empty()).then_some((prefix, original))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_and_unwraps() {
        assert_eq!(wrap("notes", "note://notes/a?b#c"), "mcpmux://notes/note://notes/a?b#c");
        assert_eq!(unwrap("mcpmux://notes/note://notes/a?b#c"), Some(("notes", "note://notes/a?b#c")));
        assert_eq!(unwrap("mcpmux://notes/"), Some(("notes", "")));
        assert_eq!(unwrap("file:///x"), None);
        assert_eq!(unwrap("mcpmux:///x"), None);
    }

    #[test]
    fn a_wrapped_template_expands_to_a_uri_that_routes_back() {
        let t = wrap("fs", "file:///{+path}");
        // Expanding the template only replaces the expression; the literal prefix stays.
        let expanded = t.replace("{+path}", "etc/hosts");
        assert_eq!(unwrap(&expanded), Some(("fs", "file:///etc/hosts")));
    }

    proptest! {
        #[test]
        fn round_trip(prefix in "[A-Za-z0-9_-]{1,20}", uri in "\\PC{0,60}") {
            let w = wrap(&prefix, &uri);
            prop_assert_eq!(unwrap(&w), Some((prefix.as_str(), uri.as_str())));
        }
    }
}
