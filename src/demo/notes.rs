//! The `notes` personality: a tiny in-memory note store, one per connection.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

use super::util::{
    RpcError, RpcResult, completion, percent_decode, percent_encode, required_str, tool_error, tool_structured,
    tool_text,
};
use super::{CompletionRef, Ctx, LogLevel, lock};

pub(super) const INSTRUCTIONS: &str = "A tiny in-memory note store: add, list, search and delete notes with the tools, \
     read each note as the resource note://notes/{title}, and summarize one with the summarize_note prompt.";

const URI_PREFIX: &str = "note://notes/";
const URI_TEMPLATE: &str = "note://notes/{title}";
const MIME_TYPE: &str = "text/plain";
const PROMPT: &str = "summarize_note";

/// Limits that keep one connection's store small.
const MAX_TITLE_CHARS: usize = 200;
const MAX_BODY_CHARS: usize = 65_536;
const MAX_NOTES: usize = 1000;

const WELCOME_BODY: &str = "Welcome to the mcpmux demo notes server.\n\
     Add a note with add_note, list them with list_notes, find them with search_notes and remove one \
     with delete_note. Each note is also a resource at note://notes/<title>, and the summarize_note \
     prompt asks for a summary of one. Notes live in memory and vanish when the connection closes.";
const SHOPPING_BODY: &str = "- milk\n- eggs\n- bread\n- coffee\n- apples";

#[derive(Debug)]
pub(super) struct Notes {
    /// In insertion order; titles are unique.
    store: Mutex<Vec<Note>>,
}

#[derive(Debug, Clone)]
struct Note {
    title: String,
    body: String,
}

impl Note {
    fn uri(&self) -> String {
        note_uri(&self.title)
    }
}

fn note_uri(title: &str) -> String {
    format!("{URI_PREFIX}{}", percent_encode(title))
}

/// The title a `note://notes/...` URI names, if it is one.
fn title_from_uri(uri: &str) -> Option<String> {
    let encoded = uri.strip_prefix(URI_PREFIX)?;
    if encoded.is_empty() || encoded.contains(['/', '?', '#']) {
        return None;
    }
    percent_decode(encoded)
}

pub(super) fn tools() -> Vec<Value> {
    let titles_schema = json!({
        "type": "object",
        "properties": {
            "notes": { "type": "array", "items": { "type": "string" }, "description": "Note titles." }
        },
        "required": ["notes"],
    });
    vec![
        json!({
            "name": "add_note",
            "title": "Add note",
            "description": "Adds a note with a unique title. The note also becomes a resource at note://notes/<title>.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "title": { "type": "string", "minLength": 1, "maxLength": MAX_TITLE_CHARS, "description": "Title of the note; unique." },
                    "body": { "type": "string", "maxLength": MAX_BODY_CHARS, "description": "Text of the note." }
                },
                "required": ["title", "body"],
            },
            "annotations": { "title": "Add note", "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false },
        }),
        json!({
            "name": "list_notes",
            "title": "List notes",
            "description": "Lists the titles of all notes, oldest first.",
            "inputSchema": { "type": "object", "properties": {}, "required": [] },
            "outputSchema": titles_schema,
            "annotations": { "title": "List notes", "readOnlyHint": true, "openWorldHint": false },
        }),
        json!({
            "name": "search_notes",
            "title": "Search notes",
            "description": "Finds the notes whose title or body contains the query (ignoring case).",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": { "type": "string", "description": "Text to look for; empty matches every note." }
                },
                "required": ["query"],
            },
            "outputSchema": titles_schema,
            "annotations": { "title": "Search notes", "readOnlyHint": true, "openWorldHint": false },
        }),
        json!({
            "name": "delete_note",
            "title": "Delete note",
            "description": "Deletes the note with this title.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "title": { "type": "string", "description": "Title of the note to delete." }
                },
                "required": ["title"],
            },
            "annotations": { "title": "Delete note", "readOnlyHint": false, "destructiveHint": true, "idempotentHint": true, "openWorldHint": false },
        }),
    ]
}

pub(super) fn resource_templates() -> Vec<Value> {
    vec![json!({
        "uriTemplate": URI_TEMPLATE,
        "name": "note",
        "title": "Note by title",
        "description": "A note, by its URL-encoded title.",
        "mimeType": MIME_TYPE,
    })]
}

pub(super) fn prompts() -> Vec<Value> {
    vec![json!({
        "name": PROMPT,
        "title": "Summarize a note",
        "description": "Asks for a short summary of one note, embedding the note itself.",
        "arguments": [{ "name": "title", "description": "Title of the note to summarize.", "required": true }],
    })]
}

impl Notes {
    pub(super) fn new() -> Self {
        let note = |title: &str, body: &str| Note { title: title.to_owned(), body: body.to_owned() };
        Self { store: Mutex::new(vec![note("welcome", WELCOME_BODY), note("shopping", SHOPPING_BODY)]) }
    }

    fn titles(&self) -> Vec<String> {
        lock(&self.store).iter().map(|n| n.title.clone()).collect()
    }

    fn find(&self, title: &str) -> Option<Note> {
        lock(&self.store).iter().find(|n| n.title == title).cloned()
    }

    pub(super) fn call_tool(&self, ctx: &Ctx<'_>, name: &str, args: &Map<String, Value>) -> RpcResult {
        match name {
            "add_note" => self.add_note(ctx, args),
            "list_notes" => {
                let titles = self.titles();
                let text = if titles.is_empty() {
                    "No notes.".to_owned()
                } else {
                    format!("{} note(s):\n{}", titles.len(), bullet_list(&titles))
                };
                Ok(tool_structured(text, json!({ "notes": titles })))
            }
            "search_notes" => {
                let query = required_str(args, "query", "tool 'search_notes'")?;
                let needle = query.to_lowercase();
                let found: Vec<String> = lock(&self.store)
                    .iter()
                    .filter(|n| n.title.to_lowercase().contains(&needle) || n.body.to_lowercase().contains(&needle))
                    .map(|n| n.title.clone())
                    .collect();
                let text = if found.is_empty() {
                    format!("No notes match '{query}'.")
                } else {
                    format!("{} note(s) match '{query}':\n{}", found.len(), bullet_list(&found))
                };
                Ok(tool_structured(text, json!({ "notes": found })))
            }
            "delete_note" => {
                let title = required_str(args, "title", "tool 'delete_note'")?;
                let removed = {
                    let mut store = lock(&self.store);
                    let before = store.len();
                    store.retain(|n| n.title != title);
                    store.len() != before
                };
                if !removed {
                    return Ok(tool_error(format!("No note titled '{title}'.")));
                }
                ctx.notify("notifications/resources/list_changed", json!({}));
                ctx.log(LogLevel::Info, "notes", json!(format!("Deleted note '{title}'.")));
                Ok(tool_text(format!("Deleted note '{title}'.")))
            }
            other => Err(RpcError::invalid_params(format!("Unknown tool: '{other}'"))),
        }
    }

    fn add_note(&self, ctx: &Ctx<'_>, args: &Map<String, Value>) -> RpcResult {
        const WHAT: &str = "tool 'add_note'";
        let title = required_str(args, "title", WHAT)?;
        let body = required_str(args, "body", WHAT)?;
        if title.is_empty() {
            return Err(RpcError::invalid_params(format!("Invalid arguments for {WHAT}: 'title' must not be empty")));
        }
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(RpcError::invalid_params(format!(
                "Invalid arguments for {WHAT}: 'title' is longer than {MAX_TITLE_CHARS} characters"
            )));
        }
        if body.chars().count() > MAX_BODY_CHARS {
            return Err(RpcError::invalid_params(format!(
                "Invalid arguments for {WHAT}: 'body' is longer than {MAX_BODY_CHARS} characters"
            )));
        }
        {
            let mut store = lock(&self.store);
            if store.iter().any(|n| n.title == title) {
                return Ok(tool_error(format!(
                    "A note titled '{title}' already exists; delete it first or pick another title."
                )));
            }
            if store.len() >= MAX_NOTES {
                return Ok(tool_error(format!("The note store is full ({MAX_NOTES} notes); delete one first.")));
            }
            store.push(Note { title: title.to_owned(), body: body.to_owned() });
        }
        ctx.notify("notifications/resources/list_changed", json!({}));
        ctx.log(LogLevel::Info, "notes", json!(format!("Added note '{title}'.")));
        Ok(tool_text(format!("Added note '{title}'.")))
    }

    pub(super) fn resources(&self) -> Vec<Value> {
        lock(&self.store)
            .iter()
            .map(|n| {
                json!({
                    "uri": n.uri(),
                    "name": n.title,
                    "title": n.title,
                    "description": format!("The note '{}'.", n.title),
                    "mimeType": MIME_TYPE,
                    "size": n.body.len(),
                })
            })
            .collect()
    }

    pub(super) fn read_resource(&self, uri: &str) -> RpcResult {
        let note =
            title_from_uri(uri).and_then(|title| self.find(&title)).ok_or_else(|| RpcError::resource_not_found(uri))?;
        Ok(json!({ "contents": [{ "uri": uri, "mimeType": MIME_TYPE, "text": note.body }] }))
    }

    pub(super) fn get_prompt(&self, name: &str, args: &HashMap<String, String>) -> RpcResult {
        if name != PROMPT {
            return Err(RpcError::invalid_params(format!("Unknown prompt: '{name}'")));
        }
        let title = args.get("title").ok_or_else(|| {
            RpcError::invalid_params(format!(
                "Invalid arguments for prompt '{PROMPT}': missing required argument 'title'"
            ))
        })?;
        let note = self.find(title).ok_or_else(|| {
            RpcError::invalid_params(format!("Invalid arguments for prompt '{PROMPT}': no note titled '{title}'"))
        })?;
        Ok(json!({
            "description": format!("Summarize the note '{title}'"),
            "messages": [
                {
                    "role": "user",
                    "content": {
                        "type": "resource",
                        "resource": { "uri": note.uri(), "mimeType": MIME_TYPE, "text": note.body },
                    },
                },
                {
                    "role": "user",
                    "content": {
                        "type": "text",
                        "text": format!("Summarize the note '{title}' above in two or three sentences, keeping any list items."),
                    },
                },
            ],
        }))
    }

    pub(super) fn complete(&self, reference: &CompletionRef<'_>, argument: &str, value: &str) -> RpcResult {
        match reference {
            CompletionRef::Prompt(PROMPT) | CompletionRef::Resource(URI_TEMPLATE) => {}
            CompletionRef::Prompt(other) => {
                return Err(RpcError::invalid_params(format!("Unknown prompt: '{other}'")));
            }
            CompletionRef::Resource(other) => {
                return Err(RpcError::invalid_params(format!("Unknown resource template: '{other}'")));
            }
        }
        if argument != "title" {
            return Ok(completion([], value));
        }
        let titles = self.titles();
        Ok(completion(titles.iter().map(String::as_str), value))
    }
}

fn bullet_list(items: &[String]) -> String {
    items.iter().map(|t| format!("- {t}")).collect::<Vec<_>>().join("\n")
}
