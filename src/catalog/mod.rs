//! The merged catalog: every backend's tools, resources, templates and prompts in one view,
//! namespaced, paged and serialized ahead of time.
//!
//! A [`Catalog`] is immutable. When any backend's listing changes the gateway builds a new one
//! and swaps it in atomically; request paths read it with one atomic load and no lock. Besides
//! the merged view it keeps one un-prefixed view per backend for `/servers/{name}/mcp`.

pub mod names;
pub mod uri;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::backend::{ListKind, Listing};
use crate::jsonrpc::Payload;
use names::{Item, Names, Target};

/// A list served in pages, each page already serialized.
#[derive(Debug, Clone, Default)]
pub struct Pages {
    pages: Vec<Payload>,
    len: usize,
}

/// One item of a served list, borrowed from a backend's listing: as it is, or with the field
/// that identifies it (`name`, `uri`, `uriTemplate`) replaced by its client-facing form. It
/// serializes exactly as the item with that field changed would (same key order), without
/// copying the item.
#[derive(Debug)]
enum Entry<'a> {
    Same(&'a Value),
    Renamed { item: &'a Map<String, Value>, key: &'static str, value: String },
}

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Entry::Same(item) => item.serialize(serializer),
            Entry::Renamed { item, key, value } => {
                let mut map = serializer.serialize_map(Some(item.len()))?;
                for (k, v) in item.iter() {
                    if k == key {
                        map.serialize_entry(k, value)?;
                    } else {
                        map.serialize_entry(k, v)?;
                    }
                }
                map.end()
            }
        }
    }
}

/// One page as served: `{"<list key>": [items], "nextCursor": …}`.
struct PageOut<'a> {
    key: &'static str,
    items: &'a [Entry<'a>],
    next: Option<String>,
}

impl Serialize for PageOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1 + usize::from(self.next.is_some())))?;
        map.serialize_entry(self.key, self.items)?;
        if let Some(next) = &self.next {
            map.serialize_entry("nextCursor", next)?;
        }
        map.end()
    }
}

impl Pages {
    fn build(kind: ListKind, items: &[Entry<'_>], page_size: usize) -> Pages {
        let page_size = page_size.max(1);
        let chunks: Vec<&[Entry<'_>]> = if items.is_empty() { vec![&[]] } else { items.chunks(page_size).collect() };
        let count = chunks.len();
        let pages = chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                let page = PageOut { key: kind.key(), items: chunk, next: (i + 1 < count).then(|| cursor_for(i + 1)) };
                Payload(serde_json::to_vec(&page).unwrap_or_else(|_| b"{}".to_vec()).into())
            })
            .collect();
        Pages { pages, len: items.len() }
    }

    /// The page a cursor points at (`None` → the first).
    pub fn page(&self, cursor: Option<&str>) -> Option<&Payload> {
        let index = match cursor {
            None => 0,
            Some(c) => parse_cursor(c)?,
        };
        self.pages.get(index)
    }

    /// Number of items across all pages.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn same_as(&self, other: &Pages) -> bool {
        self.pages.len() == other.pages.len() && self.pages.iter().zip(&other.pages).all(|(a, b)| a.0 == b.0)
    }
}

fn cursor_for(page: usize) -> String {
    format!("mcpmux-page-{page}")
}

fn parse_cursor(c: &str) -> Option<usize> {
    c.strip_prefix("mcpmux-page-")?.parse().ok()
}

/// The four lists of one view.
#[derive(Debug, Clone, Default)]
pub struct View {
    lists: [Pages; 4],
}

impl View {
    fn build<'a>(listing: impl Fn(ListKind) -> Vec<Entry<'a>>, page_size: usize) -> View {
        View { lists: ListKind::ALL.map(|k| Pages::build(k, &listing(k), page_size)) }
    }

    pub fn list(&self, kind: ListKind) -> &Pages {
        &self.lists[kind_index(kind)]
    }

    /// The lists whose content differs from `other`.
    pub fn changed_since(&self, other: &View) -> Vec<ListKind> {
        ListKind::ALL.into_iter().filter(|k| !self.list(*k).same_as(other.list(*k))).collect()
    }
}

fn kind_index(kind: ListKind) -> usize {
    match kind {
        ListKind::Tools => 0,
        ListKind::Resources => 1,
        ListKind::Templates => 2,
        ListKind::Prompts => 3,
    }
}

/// What goes into a catalog: each backend with its prefix and latest listing.
pub struct Source {
    pub backend: Arc<str>,
    pub prefix: String,
    pub listing: Arc<Listing>,
}

/// The merged, namespaced catalog.
#[derive(Debug, Default)]
pub struct Catalog {
    merged: View,
    per_backend: HashMap<String, View>,
    tools: Names,
    prompts: Names,
    /// prefix → backend
    prefixes: HashMap<String, String>,
    /// backend → prefix
    prefix_of: HashMap<String, String>,
    instructions: Option<String>,
    /// Capabilities present on at least one backend (`completions`, `logging`, …).
    backend_capabilities: BTreeMap<String, Value>,
}

impl Catalog {
    /// Builds the catalog from every backend's listing.
    pub fn build(sources: &[Source], separator: &str, page_size: usize) -> Catalog {
        let mut sources: Vec<&Source> = sources.iter().collect();
        sources.sort_by(|a, b| a.backend.cmp(&b.backend));
        let naming = |kind: ListKind| {
            let items = sources.iter().flat_map(|s| {
                s.listing.items(kind).iter().filter_map(|item| {
                    Some(Item { backend: &s.backend, prefix: &s.prefix, original: item.get("name")?.as_str()? })
                })
            });
            names::assign(items, separator)
        };
        let tools = naming(ListKind::Tools);
        let prompts = naming(ListKind::Prompts);
        for (kind, table) in [("tool", &tools), ("prompt", &prompts)] {
            for (exposed, target, why) in &table.renames {
                tracing::info!(kind, backend = %target.backend, original = %target.original, exposed = %exposed, reason = ?why, "A name was changed to fit the naming rules.");
            }
        }

        let merged_items = |kind: ListKind| -> Vec<Entry<'_>> {
            sources
                .iter()
                .flat_map(|s| {
                    let table = match kind {
                        ListKind::Tools => Some(&tools),
                        ListKind::Prompts => Some(&prompts),
                        _ => None,
                    };
                    s.listing
                        .items(kind)
                        .iter()
                        .filter_map(move |item| rewrite_item(kind, item, &s.backend, &s.prefix, table))
                })
                .collect()
        };
        let merged = View::build(merged_items, page_size);
        let per_backend = sources
            .iter()
            .map(|s| {
                let items = |k| s.listing.items(k).iter().map(Entry::Same).collect();
                (s.backend.to_string(), View::build(items, page_size))
            })
            .collect();

        let mut backend_capabilities = BTreeMap::new();
        for s in &sources {
            if let Some(caps) = s.listing.info.capabilities.as_object() {
                for (k, v) in caps {
                    backend_capabilities.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        let instructions: Vec<String> = sources
            .iter()
            .filter_map(|s| {
                let text = s.listing.info.instructions.as_deref()?.trim();
                (!text.is_empty()).then(|| format!("## {}\n{}", s.backend, text))
            })
            .collect();
        Catalog {
            merged,
            per_backend,
            tools,
            prompts,
            prefixes: sources.iter().map(|s| (s.prefix.clone(), s.backend.to_string())).collect(),
            prefix_of: sources.iter().map(|s| (s.backend.to_string(), s.prefix.clone())).collect(),
            instructions: (!instructions.is_empty()).then(|| instructions.join("\n\n")),
            backend_capabilities,
        }
    }

    /// The merged view.
    pub fn merged(&self) -> &View {
        &self.merged
    }

    /// One backend's un-prefixed view.
    pub fn backend_view(&self, backend: &str) -> Option<&View> {
        self.per_backend.get(backend)
    }

    pub fn tool(&self, exposed: &str) -> Option<&Target> {
        self.tools.routes.get(exposed)
    }

    pub fn prompt(&self, exposed: &str) -> Option<&Target> {
        self.prompts.routes.get(exposed)
    }

    /// Routes a client-facing resource URI (or template) to `(backend, backend URI)`.
    pub fn resource(&self, client_uri: &str) -> Option<(&str, String)> {
        let (prefix, original) = uri::unwrap(client_uri)?;
        let backend = self.prefixes.get(prefix)?;
        Some((backend.as_str(), original.to_owned()))
    }

    /// The backend whose prefix is `prefix`.
    pub fn backend_for_prefix(&self, prefix: &str) -> Option<&str> {
        self.prefixes.get(prefix).map(String::as_str)
    }

    /// The prefix a backend's names and URIs carry in the merged view.
    pub fn prefix_of(&self, backend: &str) -> Option<&str> {
        self.prefix_of.get(backend).map(String::as_str)
    }

    /// Backends' instructions, each headed by its server name.
    pub fn instructions(&self) -> Option<&str> {
        self.instructions.as_deref()
    }

    /// Whether any backend has `capability`.
    pub fn any_backend_has(&self, capability: &str) -> bool {
        self.backend_capabilities.contains_key(capability)
    }
}

/// The client-facing form of one listed item; `None` drops items without the field that
/// identifies them (they could not be routed).
fn rewrite_item<'a>(
    kind: ListKind,
    item: &'a Value,
    backend: &str,
    prefix: &str,
    names: Option<&Names>,
) -> Option<Entry<'a>> {
    let obj = item.as_object()?;
    let (key, value) = match kind {
        ListKind::Tools | ListKind::Prompts => {
            let original = obj.get("name")?.as_str()?;
            let exposed = names?.exposed.get(&(backend.to_owned(), original.to_owned()))?;
            ("name", exposed.clone())
        }
        ListKind::Resources => ("uri", uri::wrap(prefix, obj.get("uri")?.as_str()?)),
        ListKind::Templates => ("uriTemplate", uri::wrap(prefix, obj.get("uriTemplate")?.as_str()?)),
    };
    Some(Entry::Renamed { item: obj, key, value })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(name: &str, tools: Value, resources: Value) -> Source {
        Source {
            backend: Arc::from(name),
            prefix: name.to_owned(),
            listing: Arc::new(Listing {
                tools: serde_json::from_value(tools).unwrap(),
                resources: serde_json::from_value(resources).unwrap(),
                ..Listing::default()
            }),
        }
    }

    fn page(c: &Catalog, kind: ListKind, cursor: Option<&str>) -> Value {
        serde_json::from_slice(&c.merged().list(kind).page(cursor).unwrap().0).unwrap()
    }

    #[test]
    fn merges_namespaces_and_keeps_unknown_fields() {
        let c = Catalog::build(
            &[
                source(
                    "b",
                    json!([{"name": "t", "icons": [{"src": "x"}], "_meta": {"k": 1}, "future": true}]),
                    json!([]),
                ),
                source("a", json!([{"name": "t"}]), json!([{"uri": "file:///x", "name": "x"}])),
            ],
            "_",
            100,
        );
        let tools = page(&c, ListKind::Tools, None);
        assert_eq!(tools["tools"][0]["name"], "a_t");
        assert_eq!(
            tools["tools"][1],
            json!({"name": "b_t", "icons": [{"src": "x"}], "_meta": {"k": 1}, "future": true})
        );
        assert_eq!(c.tool("b_t").unwrap().backend, "b");
        let res = page(&c, ListKind::Resources, None);
        assert_eq!(res["resources"][0]["uri"], "mcpmux://a/file:///x");
        assert_eq!(c.resource("mcpmux://a/file:///x"), Some(("a", "file:///x".to_owned())));
    }

    /// The pages are written from borrowed items; the bytes are what serializing the rewritten
    /// items as values gives (field order, numbers and unknown fields kept).
    #[test]
    fn pages_are_byte_identical_to_the_rewritten_values() {
        let tools = json!([
            {"name": "t", "future": {"x": [1, 2.5, "é", null]}, "inputSchema": {"type": "object"}, "_meta": {}},
            {"description": "d", "name": "u"}
        ]);
        let resources = json!([{"z": null, "uri": "file:///a", "name": "a"}]);
        let c = Catalog::build(&[source("s", tools.clone(), resources.clone())], "_", 1);
        let bytes = |view: &View, kind, cursor| view.list(kind).page(cursor).unwrap().0.clone();
        let (mut t0, mut t1, mut r0) = (tools[0].clone(), tools[1].clone(), resources[0].clone());
        t0["name"] = json!("s_t");
        t1["name"] = json!("s_u");
        r0["uri"] = json!("mcpmux://s/file:///a");
        let expect = |v: Value| serde_json::to_vec(&v).unwrap();
        let merged = c.merged();
        assert_eq!(bytes(merged, ListKind::Tools, None), expect(json!({"tools": [t0], "nextCursor": "mcpmux-page-1"})));
        assert_eq!(bytes(merged, ListKind::Tools, Some("mcpmux-page-1")), expect(json!({"tools": [t1]})));
        assert_eq!(bytes(merged, ListKind::Resources, None), expect(json!({"resources": [r0]})));
        assert_eq!(bytes(merged, ListKind::Prompts, None), expect(json!({"prompts": []})));
        let own = c.backend_view("s").unwrap();
        assert_eq!(
            bytes(own, ListKind::Tools, None),
            expect(json!({"tools": [tools[0]], "nextCursor": "mcpmux-page-1"}))
        );
        assert_eq!(bytes(own, ListKind::Resources, None), expect(json!({"resources": resources})));
    }

    #[test]
    fn pages_follow_cursors_to_the_end() {
        let tools: Vec<Value> = (0..5).map(|i| json!({"name": format!("t{i}")})).collect();
        let c = Catalog::build(&[source("s", Value::Array(tools), json!([]))], "_", 2);
        let mut cursor: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let p = page(&c, ListKind::Tools, cursor.as_deref());
            seen.extend(p["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()));
            match p.get("nextCursor") {
                Some(n) => cursor = Some(n.as_str().unwrap().to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, ["s_t0", "s_t1", "s_t2", "s_t3", "s_t4"]);
        assert!(c.merged().list(ListKind::Tools).page(Some("bogus")).is_none());
    }
}
