//! Exposed names for tools and prompts: `{prefix}{separator}{name}`, made safe.
//!
//! Every exposed name matches `^[a-zA-Z0-9_-]{1,64}$`. Characters outside that set become `_`;
//! a name longer than 64 is cut and ends with `-` and 8 hex digits of a stable hash of the
//! backend and original name; when two items would get the same name, the one that sorts later
//! (by backend, then original name) gets the hashed form. The result depends only on the set of
//! items, never on the order backends started in. Routing uses the table built here; it never
//! splits an exposed name on the separator.

use std::collections::BTreeMap;

/// Longest name many LLM hosts accept for a tool.
pub const MAX_NAME_LEN: usize = 64;
/// Length of the hash suffix, with its leading `-`.
const HASH_SUFFIX_LEN: usize = 9;

/// Whether `c` may appear in an exposed name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Replaces every character that may not appear in a name with `_`.
pub fn sanitize(s: &str) -> String {
    let out: String = s.chars().map(|c| if is_name_char(c) { c } else { '_' }).collect();
    if out.is_empty() { "_".to_owned() } else { out }
}

/// 64-bit FNV-1a: small, stable across releases and platforms.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in part.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn with_hash(base: &str, backend: &str, original: &str, salt: u32) -> String {
    let salt = salt.to_string();
    let h = stable_hash(&[backend, original, if salt == "0" { "" } else { &salt }]);
    let keep = MAX_NAME_LEN - HASH_SUFFIX_LEN;
    let cut: String = base.chars().take(keep).collect();
    format!("{cut}-{:08x}", h as u32)
}

/// Why an exposed name differs from the plain `{prefix}{sep}{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rename {
    Sanitized,
    Shortened,
    Collision,
}

/// Where an exposed name routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub backend: String,
    pub original: String,
}

/// One item to name: `(backend, prefix, original name)`.
pub struct Item<'a> {
    pub backend: &'a str,
    pub prefix: &'a str,
    pub original: &'a str,
}

/// The naming table for one kind (tools or prompts).
#[derive(Debug, Default, Clone)]
pub struct Names {
    /// exposed name → target
    pub routes: BTreeMap<String, Target>,
    /// (backend, original) → exposed name
    pub exposed: BTreeMap<(String, String), String>,
    /// Names that differ from the plain form, with why, for the log.
    pub renames: Vec<(String, Target, Rename)>,
}

/// Assigns exposed names to `items`. With `prefix` empty (single-backend views) the original
/// name is used as the base.
pub fn assign<'a>(items: impl IntoIterator<Item = Item<'a>>, separator: &str) -> Names {
    let mut sorted: Vec<Item<'a>> = items.into_iter().collect();
    sorted.sort_by(|a, b| (a.backend, a.original).cmp(&(b.backend, b.original)));
    sorted.dedup_by(|a, b| a.backend == b.backend && a.original == b.original);
    let mut names = Names::default();
    for item in sorted {
        let plain = if item.prefix.is_empty() {
            item.original.to_owned()
        } else {
            format!("{}{}{}", item.prefix, separator, item.original)
        };
        let clean = sanitize(&plain);
        let mut why = (clean != plain).then_some(Rename::Sanitized);
        let mut name = clean.clone();
        if name.chars().count() > MAX_NAME_LEN {
            name = with_hash(&clean, item.backend, item.original, 0);
            why = Some(Rename::Shortened);
        }
        let mut salt = 0;
        while names.routes.contains_key(&name) {
            salt += 1;
            name = with_hash(&clean, item.backend, item.original, salt);
            why = Some(Rename::Collision);
        }
        let target = Target { backend: item.backend.to_owned(), original: item.original.to_owned() };
        if let Some(w) = why {
            names.renames.push((name.clone(), target.clone(), w));
        }
        names.exposed.insert((target.backend.clone(), target.original.clone()), name.clone());
        names.routes.insert(name, target);
    }
    names
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn valid(name: &str) -> bool {
        !name.is_empty() && name.chars().count() <= MAX_NAME_LEN && name.chars().all(is_name_char)
    }

    #[test]
    fn plain_names_are_prefixed() {
        let n = assign([Item { backend: "notes", prefix: "notes", original: "add_note" }], "_");
        assert_eq!(n.routes["notes_add_note"], Target { backend: "notes".into(), original: "add_note".into() });
        assert!(n.renames.is_empty());
    }

    #[test]
    fn unsafe_long_and_colliding_names_are_fixed_stably() {
        let long = "x".repeat(100);
        let items = || {
            vec![
                Item { backend: "a", prefix: "a", original: "get.file" },
                Item { backend: "a", prefix: "a", original: "get_file" },
                Item { backend: "b", prefix: "b", original: &long },
            ]
        };
        let n1 = assign(items(), "_");
        let mut rev = items();
        rev.reverse();
        let n2 = assign(rev, "_");
        assert_eq!(n1.routes, n2.routes, "order of discovery must not matter");
        assert_eq!(n1.exposed[&("a".into(), "get.file".into())], "a_get_file");
        let other = &n1.exposed[&("a".into(), "get_file".into())];
        assert!(other.starts_with("a_get_file-") && valid(other), "{other}");
        let l = &n1.exposed[&("b".into(), long.clone())];
        assert_eq!(l.len(), MAX_NAME_LEN);
        assert_eq!(n1.renames.len(), 3);
    }

    proptest! {
        #[test]
        fn every_exposed_name_is_valid_and_routes_back(
            items in proptest::collection::vec(("[a-c]{1,2}", "\\PC{0,80}"), 0..40),
            sep in prop::sample::select(vec!["_", "__", "-"]),
        ) {
            let owned: Vec<(String, String)> = items;
            let n = assign(owned.iter().map(|(b, o)| Item { backend: b, prefix: b, original: o }), sep);
            let distinct: std::collections::BTreeSet<_> = owned.iter().cloned().collect();
            prop_assert_eq!(n.routes.len(), distinct.len());
            for (name, target) in &n.routes {
                prop_assert!(valid(name), "invalid name {:?}", name);
                prop_assert_eq!(&n.exposed[&(target.backend.clone(), target.original.clone())], name);
            }
        }
    }
}
