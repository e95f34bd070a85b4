//! Every server of an `mcpServers` config behind one client, named as the daemon names them.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::{Value, json};

use super::{
    Client, ClientError, ClientOptions, Prompt, PromptResult, ReadResult, Resource, ResourceTemplate, Tool, ToolResult,
};
use crate::backend::{ListKind, Listing};
use crate::catalog::{Catalog, Source};
use crate::config::Config;

/// One client per enabled server of a config, with the merged catalog the daemon would serve:
/// tool and prompt names `{prefix}{separator}{name}`, resource URIs `mcpmux://{prefix}/{uri}`.
/// Clones share the connections.
///
/// ```
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = mcpmux::client::doc_support::clock_server().await?;
/// use mcpmux::client::{ClientOptions, MultiClient};
/// use mcpmux::config::{Format, ProcessEnv, parse_str};
/// use serde_json::json;
///
/// let text = json!({"mcpServers": {"clock": {"url": server.url}}}).to_string();
/// let config = parse_str(&text, Format::Json, &ProcessEnv)?;
/// let multi = MultiClient::connect(&config, ClientOptions::default()).await;
/// assert!(multi.failures().is_empty());
/// let names: Vec<String> = multi.list_tools().iter().map(|t| t.name().to_owned()).collect();
/// assert!(names.contains(&"clock_add".to_owned()));
/// let result = multi.call_tool("clock_add", json!({"a": 1, "b": 2})).await?;
/// assert_eq!(result.text(), "3");
/// multi.close().await;
/// # Ok(())
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Clone)]
pub struct MultiClient {
    inner: Arc<MultiInner>,
}

struct MultiInner {
    clients: BTreeMap<String, Client>,
    failures: Vec<(String, ClientError)>,
    catalog: ArcSwap<Catalog>,
    /// Server name → prefix, from the config.
    prefixes: BTreeMap<String, String>,
    separator: String,
    page_size: usize,
}

impl MultiClient {
    /// Connects every enabled server of `config` at once and lists their catalogs. A server
    /// that fails is left out and reported by [`failures`](MultiClient::failures). The config's
    /// own timeouts and size limit replace `options.settings`.
    pub async fn connect(config: &Config, options: ClientOptions) -> MultiClient {
        let options = ClientOptions { settings: config.settings.clone(), ..options };
        let opened = futures_util::future::join_all(config.enabled_servers().map(|entry| {
            let options = options.clone();
            async move { (entry.name.clone(), Client::connect(entry, options).await) }
        }))
        .await;
        let mut clients = BTreeMap::new();
        let mut failures = Vec::new();
        for (name, outcome) in opened {
            match outcome {
                Ok(client) => {
                    clients.insert(name, client);
                }
                Err(e) => failures.push((name, e)),
            }
        }
        let multi = MultiClient {
            inner: Arc::new(MultiInner {
                clients,
                failures,
                catalog: ArcSwap::from_pointee(Catalog::default()),
                prefixes: config.enabled_servers().map(|s| (s.name.clone(), s.prefix.clone())).collect(),
                separator: config.settings.separator.clone(),
                page_size: config.settings.page_size,
            }),
        };
        multi.refresh().await;
        multi
    }

    /// The servers that could not be connected, with why.
    pub fn failures(&self) -> &[(String, ClientError)] {
        &self.inner.failures
    }

    /// The connected servers by name.
    pub fn clients(&self) -> &BTreeMap<String, Client> {
        &self.inner.clients
    }

    /// One server's client.
    pub fn client(&self, name: &str) -> Option<&Client> {
        self.inner.clients.get(name)
    }

    /// Lists every server's catalog again (after a list change), and rebuilds the names. A
    /// server whose listing fails keeps no items until the next refresh.
    pub async fn refresh(&self) {
        let prefixes = &self.inner.prefixes;
        let listings = futures_util::future::join_all(self.inner.clients.iter().map(|(name, client)| async move {
            let mut listing = Listing::default();
            listing.info.capabilities = client.capabilities().clone();
            listing.info.server_info = client.server_info().clone();
            listing.info.instructions = client.instructions().map(str::to_owned);
            for kind in ListKind::ALL {
                if has_list(client.capabilities(), kind) {
                    let items = client.list_all(kind).await.unwrap_or_else(|e| {
                        tracing::warn!(server = %name, error = %e, "Listing failed.");
                        Vec::new()
                    });
                    match kind {
                        ListKind::Tools => listing.tools = items,
                        ListKind::Resources => listing.resources = items,
                        ListKind::Templates => listing.templates = items,
                        ListKind::Prompts => listing.prompts = items,
                    }
                }
            }
            (name.clone(), listing)
        }))
        .await;
        let sources: Vec<Source> = listings
            .into_iter()
            .map(|(name, listing)| Source {
                prefix: prefixes.get(&name).cloned().unwrap_or_else(|| name.clone()),
                backend: Arc::from(name.as_str()),
                listing: Arc::new(listing),
            })
            .collect();
        let catalog = Catalog::build(&sources, &self.inner.separator, self.inner.page_size);
        self.inner.catalog.store(Arc::new(catalog));
    }

    fn merged(&self, kind: ListKind) -> Vec<Value> {
        let catalog = self.inner.catalog.load();
        let pages = catalog.merged().list(kind);
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        while let Some(page) = pages.page(cursor.as_deref()) {
            let Ok(page) = serde_json::from_slice::<Value>(&page.0) else { break };
            if let Some(Value::Array(list)) = page.get(kind.key()) {
                items.extend(list.iter().cloned());
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        items
    }

    /// Every server's tools, with their namespaced names.
    pub fn list_tools(&self) -> Vec<Tool> {
        self.merged(ListKind::Tools).into_iter().map(Tool::from_raw).collect()
    }

    /// Every server's resources, with their namespaced URIs.
    pub fn list_resources(&self) -> Vec<Resource> {
        self.merged(ListKind::Resources).into_iter().map(Resource::from_raw).collect()
    }

    /// Every server's resource templates, with their namespaced URI templates.
    pub fn list_resource_templates(&self) -> Vec<ResourceTemplate> {
        self.merged(ListKind::Templates).into_iter().map(ResourceTemplate::from_raw).collect()
    }

    /// Every server's prompts, with their namespaced names.
    pub fn list_prompts(&self) -> Vec<Prompt> {
        self.merged(ListKind::Prompts).into_iter().map(Prompt::from_raw).collect()
    }

    /// Which server and original name a namespaced tool name stands for.
    pub fn route_tool(&self, name: &str) -> Result<(Client, String), ClientError> {
        let catalog = self.inner.catalog.load();
        let target = catalog.tool(name).ok_or_else(|| not_found("tool", name))?;
        let client = self.client(&target.backend).ok_or_else(|| not_found("server", &target.backend))?;
        Ok((client.clone(), target.original.clone()))
    }

    /// Calls a tool by its namespaced name.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<ToolResult, ClientError> {
        let (client, original) = self.route_tool(name)?;
        client.call_tool(&original, arguments).await
    }

    /// Reads a resource by its namespaced URI (`mcpmux://{prefix}/{uri}`); the URIs in the
    /// answer are namespaced too.
    pub async fn read_resource(&self, uri: &str) -> Result<ReadResult, ClientError> {
        let (backend, original, prefix) = {
            let catalog = self.inner.catalog.load();
            let (backend, original) = catalog.resource(uri).ok_or_else(|| not_found("resource", uri))?;
            let prefix = catalog.prefix_of(backend).unwrap_or(backend).to_owned();
            (backend.to_owned(), original, prefix)
        };
        let client = self.client(&backend).ok_or_else(|| not_found("server", &backend))?;
        let raw = client.request(crate::protocol::methods::RESOURCES_READ, Some(json!({"uri": original}))).await?;
        Ok(ReadResult::from_raw(super::wrap_contents(raw, &prefix)))
    }

    /// The declared arguments of a prompt, by its namespaced name.
    pub fn prompt(&self, name: &str) -> Option<Prompt> {
        self.list_prompts().into_iter().find(|p| p.name() == name)
    }

    /// Gets a prompt by its namespaced name.
    pub async fn get_prompt(&self, name: &str, arguments: Value) -> Result<PromptResult, ClientError> {
        let (backend, original) = {
            let catalog = self.inner.catalog.load();
            let target = catalog.prompt(name).ok_or_else(|| not_found("prompt", name))?;
            (target.backend.clone(), target.original.clone())
        };
        let client = self.client(&backend).ok_or_else(|| not_found("server", &backend))?;
        client.get_prompt(&original, arguments).await
    }

    /// Pings every server; the first failure is returned.
    pub async fn ping(&self) -> Result<(), ClientError> {
        for client in self.inner.clients.values() {
            client.ping().await?;
        }
        Ok(())
    }

    /// Closes every connection (for every clone).
    pub async fn close(&self) {
        futures_util::future::join_all(self.inner.clients.values().map(Client::close)).await;
    }
}

fn not_found(kind: &'static str, name: &str) -> ClientError {
    ClientError::NotFound { kind, name: name.to_owned() }
}

fn has_list(capabilities: &Value, kind: ListKind) -> bool {
    let key = match kind {
        ListKind::Tools => "tools",
        ListKind::Resources | ListKind::Templates => "resources",
        ListKind::Prompts => "prompts",
    };
    capabilities.get(key).is_some_and(|c| !c.is_null())
}
