//! Typed views over what a server sends.
//!
//! Each view wraps the JSON object exactly as the server wrote it: the accessors read the
//! well-known fields, and [`raw`](Tool::raw) gives the whole object, unknown fields included.
//! Nothing is dropped or renamed.

use serde_json::Value;

macro_rules! view {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name(Value);

        impl $name {
            /// Wraps a JSON value as this view (no check is made; accessors return `None` or
            /// empty for missing fields).
            pub fn from_raw(raw: Value) -> Self {
                Self(raw)
            }

            /// The object exactly as the server sent it.
            pub fn raw(&self) -> &Value {
                &self.0
            }

            /// The object exactly as the server sent it, by value.
            pub fn into_raw(self) -> Value {
                self.0
            }
        }

        impl From<Value> for $name {
            fn from(raw: Value) -> Self {
                Self(raw)
            }
        }
    };
}

view!(
    /// One entry of `tools/list`.
    Tool
);
view!(
    /// The result of `tools/call`.
    ToolResult
);
view!(
    /// One entry of `resources/list`.
    Resource
);
view!(
    /// One entry of `resources/templates/list`.
    ResourceTemplate
);
view!(
    /// The result of `resources/read`.
    ReadResult
);
view!(
    /// One entry of `prompts/list`.
    Prompt
);
view!(
    /// The result of `prompts/get`.
    PromptResult
);
view!(
    /// The result of `completion/complete`.
    Completion
);

impl Tool {
    pub fn name(&self) -> &str {
        str_field(&self.0, "name").unwrap_or_default()
    }

    pub fn title(&self) -> Option<&str> {
        str_field(&self.0, "title").or_else(|| self.0.get("annotations")?.get("title")?.as_str())
    }

    pub fn description(&self) -> Option<&str> {
        str_field(&self.0, "description")
    }

    /// The JSON Schema of the tool's arguments.
    pub fn input_schema(&self) -> Option<&Value> {
        self.0.get("inputSchema")
    }

    /// Names of the arguments the input schema marks as required, in schema order.
    pub fn required_arguments(&self) -> Vec<&str> {
        self.input_schema()
            .and_then(|s| s.get("required"))
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

impl ToolResult {
    /// `isError`: the tool ran and reports a failure.
    pub fn is_error(&self) -> bool {
        self.0.get("isError").and_then(Value::as_bool).unwrap_or(false)
    }

    /// The content blocks (`text`, `image`, `audio`, `resource`, `resource_link`, …).
    pub fn content(&self) -> &[Value] {
        self.0.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
    }

    /// `structuredContent`, when the tool returned one.
    pub fn structured_content(&self) -> Option<&Value> {
        self.0.get("structuredContent").filter(|v| !v.is_null())
    }

    /// The text blocks joined with newlines.
    pub fn text(&self) -> String {
        texts(self.content())
    }
}

impl Resource {
    pub fn uri(&self) -> &str {
        str_field(&self.0, "uri").unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        str_field(&self.0, "name").unwrap_or_default()
    }

    pub fn title(&self) -> Option<&str> {
        str_field(&self.0, "title")
    }

    pub fn description(&self) -> Option<&str> {
        str_field(&self.0, "description")
    }

    pub fn mime_type(&self) -> Option<&str> {
        str_field(&self.0, "mimeType")
    }
}

impl ResourceTemplate {
    /// The RFC 6570 URI template.
    pub fn uri_template(&self) -> &str {
        str_field(&self.0, "uriTemplate").unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        str_field(&self.0, "name").unwrap_or_default()
    }

    pub fn title(&self) -> Option<&str> {
        str_field(&self.0, "title")
    }

    pub fn description(&self) -> Option<&str> {
        str_field(&self.0, "description")
    }

    pub fn mime_type(&self) -> Option<&str> {
        str_field(&self.0, "mimeType")
    }
}

impl ReadResult {
    /// The content items, each with `uri` and `text` or `blob` (base64).
    pub fn contents(&self) -> &[Value] {
        self.0.get("contents").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
    }

    /// The text items joined with newlines.
    pub fn text(&self) -> String {
        let parts: Vec<&str> = self.contents().iter().filter_map(|c| c.get("text")?.as_str()).collect();
        parts.join("\n")
    }
}

impl Prompt {
    pub fn name(&self) -> &str {
        str_field(&self.0, "name").unwrap_or_default()
    }

    pub fn title(&self) -> Option<&str> {
        str_field(&self.0, "title")
    }

    pub fn description(&self) -> Option<&str> {
        str_field(&self.0, "description")
    }

    /// The declared arguments, each with `name`, and optionally `description` and `required`.
    pub fn arguments(&self) -> &[Value] {
        self.0.get("arguments").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
    }

    /// Names of the required arguments.
    pub fn required_arguments(&self) -> Vec<&str> {
        self.arguments()
            .iter()
            .filter(|a| a.get("required").and_then(Value::as_bool).unwrap_or(false))
            .filter_map(|a| a.get("name")?.as_str())
            .collect()
    }
}

impl PromptResult {
    pub fn description(&self) -> Option<&str> {
        str_field(&self.0, "description")
    }

    /// The messages, each with `role` and one `content` block.
    pub fn messages(&self) -> &[Value] {
        self.0.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
    }
}

impl Completion {
    /// The suggested values.
    pub fn values(&self) -> Vec<&str> {
        self.0
            .get("completion")
            .and_then(|c| c.get("values"))
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Whether the server has more values than it sent.
    pub fn has_more(&self) -> bool {
        self.0.get("completion").and_then(|c| c.get("hasMore")).and_then(Value::as_bool).unwrap_or(false)
    }
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn texts(content: &[Value]) -> String {
    let parts: Vec<&str> = content
        .iter()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|c| c.get("text")?.as_str())
        .collect();
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn views_read_known_fields_and_keep_everything() {
        let raw = json!({
            "name": "add", "description": "Adds", "x-vendor": {"keep": true},
            "inputSchema": {"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a", "b"]}
        });
        let tool = Tool::from_raw(raw.clone());
        assert_eq!(tool.name(), "add");
        assert_eq!(tool.title(), None);
        assert_eq!(tool.required_arguments(), vec!["a", "b"]);
        assert_eq!(tool.raw(), &raw);

        let result = ToolResult::from(
            json!({"content": [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}], "isError": true}),
        );
        assert!(result.is_error());
        assert_eq!(result.text(), "a\nb");
        assert_eq!(result.structured_content(), None);
    }
}
