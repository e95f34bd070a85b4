//! Arguments given as `key=value` words, converted by a tool's input schema.
//!
//! A value becomes what the schema's `type` for that property asks for: `integer`, `number`,
//! `boolean`, `null`, `object` or `array` (parsed as JSON), `string` (taken as is). A property
//! without a single type gets JSON when the text parses as JSON, else the text. A value that
//! does not fit is an error naming the argument.
//!
//! ```
//! use mcpmux::client::args::{ArgumentError, tool_arguments};
//! use serde_json::json;
//!
//! let schema = json!({
//!     "type": "object",
//!     "properties": {"a": {"type": "number"}, "loud": {"type": "boolean"}, "text": {"type": "string"}},
//!     "required": ["a"]
//! });
//! let args = tool_arguments(Some(&schema), &["a=2.5", "loud=true", "text=42"]).unwrap();
//! assert_eq!(args, json!({"a": 2.5, "loud": true, "text": "42"}));
//!
//! let err = tool_arguments(Some(&schema), &["a=two"]).unwrap_err();
//! assert_eq!(err.to_string(), "argument 'a': expected a number, got 'two'");
//! assert!(matches!(tool_arguments(Some(&schema), &["loud=false"]), Err(ArgumentError::Missing { .. })));
//! ```

use serde_json::{Map, Value};

/// Why `key=value` words could not become arguments.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArgumentError {
    #[error("'{0}' is not key=value")]
    NotKeyValue(String),
    #[error("argument '{name}': expected {expected}, got '{value}'")]
    Mismatch { name: String, expected: String, value: String },
    #[error("missing required argument '{name}'")]
    Missing { name: String },
    #[error("unknown argument '{name}'; known: {known}")]
    Unknown { name: String, known: String },
    #[error("--args is not a JSON object: {0}")]
    NotAnObject(String),
}

/// Converts `key=value` words into a tool's `arguments` object, by its input schema (`None`:
/// every value is JSON when it parses as JSON, else text).
pub fn tool_arguments<S: AsRef<str>>(schema: Option<&Value>, words: &[S]) -> Result<Value, ArgumentError> {
    tool_arguments_over(schema, Map::new(), words)
}

/// Like [`tool_arguments`], on top of `base` (arguments given as JSON, see
/// [`parse_json_arguments`]): a word wins over the same key in `base`. Required arguments are
/// checked on the result.
pub fn tool_arguments_over<S: AsRef<str>>(
    schema: Option<&Value>,
    base: Map<String, Value>,
    words: &[S],
) -> Result<Value, ArgumentError> {
    let properties = schema.and_then(|s| s.get("properties")).and_then(Value::as_object);
    let closed = schema.and_then(|s| s.get("additionalProperties")) == Some(&Value::Bool(false));
    let mut out = base;
    for word in words {
        let (name, text) = split(word.as_ref())?;
        let property = properties.and_then(|p| p.get(name));
        if property.is_none() && closed {
            let known: Vec<&str> = properties.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
            return Err(ArgumentError::Unknown { name: name.to_owned(), known: known.join(", ") });
        }
        out.insert(name.to_owned(), convert(name, text, property)?);
    }
    check_required(schema.and_then(|s| s.get("required")).and_then(Value::as_array), &out)?;
    Ok(Value::Object(out))
}

/// Parses arguments given as one JSON object (`--args '{"a": 1}'`).
pub fn parse_json_arguments(json: &str) -> Result<Map<String, Value>, ArgumentError> {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ArgumentError::NotAnObject(format!("got {other}"))),
        Err(e) => Err(ArgumentError::NotAnObject(e.to_string())),
    }
}

/// Converts `key=value` words into a prompt's `arguments` (every value a string), checking the
/// prompt's required arguments (`arguments` as listed by `prompts/list`).
pub fn prompt_arguments<S: AsRef<str>>(declared: &[Value], words: &[S]) -> Result<Value, ArgumentError> {
    let mut out = Map::new();
    for word in words {
        let (name, text) = split(word.as_ref())?;
        out.insert(name.to_owned(), Value::String(text.to_owned()));
    }
    for arg in declared {
        let required = arg.get("required").and_then(Value::as_bool).unwrap_or(false);
        if let Some(name) = arg.get("name").and_then(Value::as_str)
            && required
            && !out.contains_key(name)
        {
            return Err(ArgumentError::Missing { name: name.to_owned() });
        }
    }
    Ok(Value::Object(out))
}

fn split(word: &str) -> Result<(&str, &str), ArgumentError> {
    match word.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name, value)),
        _ => Err(ArgumentError::NotKeyValue(word.to_owned())),
    }
}

fn check_required(required: Option<&Vec<Value>>, given: &Map<String, Value>) -> Result<(), ArgumentError> {
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        if !given.contains_key(name) {
            return Err(ArgumentError::Missing { name: name.to_owned() });
        }
    }
    Ok(())
}

/// The one JSON type a property schema names, if it names exactly one (a `["x", "null"]` pair
/// counts as `x`).
fn single_type(property: &Value) -> Option<&str> {
    match property.get("type")? {
        Value::String(t) => Some(t),
        Value::Array(types) => {
            let non_null: Vec<&str> = types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
            (non_null.len() == 1).then(|| non_null[0])
        }
        _ => None,
    }
}

fn convert(name: &str, text: &str, property: Option<&Value>) -> Result<Value, ArgumentError> {
    let mismatch = |expected: &str| ArgumentError::Mismatch {
        name: name.to_owned(),
        expected: expected.to_owned(),
        value: text.to_owned(),
    };
    let Some(ty) = property.and_then(single_type) else {
        return Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())));
    };
    match ty {
        "string" => Ok(Value::String(text.to_owned())),
        "integer" => text.trim().parse::<i64>().map(Value::from).map_err(|_| mismatch("an integer")),
        "number" => {
            if let Ok(i) = text.trim().parse::<i64>() {
                return Ok(Value::from(i));
            }
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| mismatch("a number"))
        }
        "boolean" => match text.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(mismatch("true or false")),
        },
        "null" => match text.trim() {
            "null" => Ok(Value::Null),
            _ => Err(mismatch("null")),
        },
        "object" => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(mismatch("a JSON object")),
        },
        "array" => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Array(_)) => Ok(v),
            _ => Err(mismatch("a JSON array")),
        },
        _ => Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "n": {"type": "integer"}, "x": {"type": "number"}, "b": {"type": "boolean"},
                "o": {"type": "object"}, "l": {"type": "array"}, "s": {"type": "string"},
                "maybe": {"type": ["integer", "null"]}, "any": {}
            },
            "required": ["n"]
        })
    }

    #[test]
    fn converts_by_type() {
        let got = tool_arguments(
            Some(&schema()),
            &["n=3", "x=1.5", "b=false", "o={\"k\":1}", "l=[1,2]", "s=007", "maybe=4", "any=[true]", "extra=hi"],
        )
        .unwrap();
        assert_eq!(
            got,
            json!({"n": 3, "x": 1.5, "b": false, "o": {"k": 1}, "l": [1, 2], "s": "007", "maybe": 4, "any": [true], "extra": "hi"})
        );
        assert_eq!(tool_arguments(None, &["a=1", "b=x=y"]).unwrap(), json!({"a": 1, "b": "x=y"}));
    }

    #[test]
    fn names_the_argument_that_does_not_fit() {
        let s = schema();
        let err = |words: &[&str]| tool_arguments(Some(&s), words).unwrap_err().to_string();
        assert_eq!(err(&["n=1.5"]), "argument 'n': expected an integer, got '1.5'");
        assert_eq!(err(&["n=1", "b=yes"]), "argument 'b': expected true or false, got 'yes'");
        assert_eq!(err(&["n=1", "o=[1]"]), "argument 'o': expected a JSON object, got '[1]'");
        assert_eq!(err(&["b=true"]), "missing required argument 'n'");
        assert_eq!(err(&["n"]), "'n' is not key=value");
        let closed = json!({"properties": {"a": {}}, "additionalProperties": false});
        assert_eq!(tool_arguments(Some(&closed), &["z=1"]).unwrap_err().to_string(), "unknown argument 'z'; known: a");
    }

    #[test]
    fn json_arguments_merge_under_words() {
        let base = parse_json_arguments(r#"{"a": 1, "b": 2, "n": 5}"#).unwrap();
        let got = tool_arguments_over(Some(&schema()), base, &["a=2"]).unwrap();
        assert_eq!(got, json!({"a": 2, "b": 2, "n": 5}));
        assert!(matches!(parse_json_arguments("[1]"), Err(ArgumentError::NotAnObject(_))));
    }

    #[test]
    fn prompt_arguments_are_strings() {
        let declared = vec![json!({"name": "topic", "required": true}), json!({"name": "style"})];
        assert_eq!(prompt_arguments(&declared, &["topic=5"]).unwrap(), json!({"topic": "5"}));
        assert_eq!(
            prompt_arguments(&declared, &["style=x"]).unwrap_err(),
            ArgumentError::Missing { name: "topic".into() }
        );
    }
}
