//! JSON-RPC 2.0 messages, parsed just enough to route them.
//!
//! Params stay `serde_json::Value` (mcpmux rewrites a few fields in them); results stay raw text
//! ([`RawValue`]) until something needs to look inside, so a backend's answer goes back to the
//! client exactly as it was written.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// Standard JSON-RPC error codes and the MCP ones mcpmux uses.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The backend that owns the target is not connected.
    pub const BACKEND_UNAVAILABLE: i64 = -32000;
    /// The backend did not answer in time (same code the official SDKs use for timeouts).
    pub const REQUEST_TIMEOUT: i64 = -32001;
    /// MCP: resource not found.
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// The request was cancelled by its sender (sent only when a response cannot be avoided).
    pub const REQUEST_CANCELLED: i64 = -32800;
    /// 2026-07-28: HTTP headers do not match the body, or a required one is missing.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: the request needs a client capability the client did not declare.
    pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
    /// 2026-07-28: the requested protocol version is not supported.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
}

/// One JSON-RPC message as read off the wire.
#[derive(Debug, Deserialize)]
pub struct Message {
    /// `"2.0"` is recognised without allocating a copy.
    #[serde(default, deserialize_with = "version")]
    pub jsonrpc: Option<Cow<'static, str>>,
    /// Request or response id, exactly as sent (number or string). `null` reads as `None`.
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub params: Option<Value>,
    #[serde(default)]
    pub result: Option<Box<RawValue>>,
    #[serde(default)]
    pub error: Option<Value>,
}

/// Reads `jsonrpc`: a string (`null` reads as `None`); `"2.0"` borrows a static string.
fn version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'static, str>>, D::Error> {
    struct Version;
    impl<'de> serde::de::Visitor<'de> for Version {
        type Value = Option<Cow<'static, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(if v == "2.0" { Cow::Borrowed("2.0") } else { Cow::Owned(v.to_owned()) }))
        }
    }
    d.deserialize_option(Version)
}

/// What kind of message it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
    Invalid,
}

impl Message {
    /// Parses one message from text.
    pub fn parse(text: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(text)
    }

    pub fn kind(&self) -> Kind {
        if self.jsonrpc.as_deref() != Some("2.0") {
            return Kind::Invalid;
        }
        match (&self.method, &self.id) {
            (Some(_), Some(id)) if is_valid_id(id) => Kind::Request,
            (Some(_), Some(_)) => Kind::Invalid,
            (Some(_), None) => Kind::Notification,
            (None, Some(_)) if self.result.is_some() != self.error.is_some() => Kind::Response,
            (None, None) if self.error.is_some() => Kind::Response,
            _ => Kind::Invalid,
        }
    }
}

/// JSON-RPC ids are strings or numbers.
pub fn is_valid_id(id: &Value) -> bool {
    id.is_string() || id.is_number()
}

/// A result ready to send: serialized JSON text, cheap to clone.
#[derive(Debug, Clone)]
pub struct Payload(pub Bytes);

impl Payload {
    /// Serializes a value built by mcpmux.
    pub fn from_value(v: &Value) -> Self {
        Payload(Bytes::from(serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec())))
    }

    /// Takes a backend's raw result without copying it again.
    pub fn from_raw(raw: Box<RawValue>) -> Self {
        let text: Box<str> = raw.into();
        Payload(Bytes::from(String::from(text)))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("{}")
    }
}

/// `{"jsonrpc":"2.0","id":ID,"result":PAYLOAD}` as bytes.
pub fn response_bytes(id: &Value, result: &Payload) -> Bytes {
    const HEAD: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":";
    let mut out = Vec::with_capacity(HEAD.len() + 24 + 11 + result.0.len());
    out.extend_from_slice(HEAD);
    if serde_json::to_writer(&mut out, id).is_err() {
        out.truncate(HEAD.len());
        out.extend_from_slice(b"null");
    }
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(&result.0);
    out.push(b'}');
    Bytes::from(out)
}

/// `{"jsonrpc":"2.0","id":ID,"error":ERROR}` as bytes; `id` `None` writes `null`.
pub fn error_bytes(id: Option<&Value>, error: &Value) -> Bytes {
    let msg = serde_json::json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error});
    Bytes::from(serde_json::to_vec(&msg).unwrap_or_default())
}

/// A JSON-RPC error object.
pub fn error_object(code: i64, message: impl Into<String>, data: Option<Value>) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("code".into(), code.into());
    obj.insert("message".into(), Value::String(message.into()));
    if let Some(d) = data {
        obj.insert("data".into(), d);
    }
    Value::Object(obj)
}

/// A request message with id `id`.
pub fn request(id: u64, method: &str, params: Option<Value>) -> Value {
    let mut msg = notification(method, params);
    if let Some(obj) = msg.as_object_mut() {
        obj.insert("id".into(), id.into());
    }
    msg
}

/// A notification message.
pub fn notification(method: &str, params: Option<Value>) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("jsonrpc".into(), "2.0".into());
    obj.insert("method".into(), method.into());
    if let Some(p) = params {
        obj.insert("params".into(), p);
    }
    Value::Object(obj)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        let k = |s: &str| Message::parse(s.as_bytes()).unwrap().kind();
        assert_eq!(k(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), Kind::Request);
        assert_eq!(k(r#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#), Kind::Request);
        assert_eq!(k(r#"{"jsonrpc":"2.0","method":"x"}"#), Kind::Notification);
        assert_eq!(k(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), Kind::Response);
        assert_eq!(k(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}"#), Kind::Response);
        assert_eq!(k(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#), Kind::Invalid);
        assert_eq!(k(r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#), Kind::Invalid);
        assert_eq!(k(r#"{"jsonrpc":"2.0","id":1}"#), Kind::Invalid);
        assert_eq!(k(r#"{"jsonrpc":"2\u002e0","id":1,"method":"ping"}"#), Kind::Request);
        assert_eq!(k(r#"{"jsonrpc":null,"id":1,"method":"ping"}"#), Kind::Invalid);
        assert!(Message::parse(br#"{"jsonrpc":2.0,"id":1,"method":"ping"}"#).is_err());
    }

    #[test]
    fn raw_results_are_kept_byte_for_byte() {
        let text = r#"{"jsonrpc":"2.0","id":7,"result":{"b":1.50,"a":[ 1, 2 ],"_meta":{"x":"é"}}}"#;
        let m = Message::parse(text.as_bytes()).unwrap();
        let p = Payload::from_raw(m.result.unwrap());
        assert_eq!(p.as_str(), r#"{"b":1.50,"a":[ 1, 2 ],"_meta":{"x":"é"}}"#);
        let out = response_bytes(&Value::from("req-1"), &p);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"jsonrpc":"2.0","id":"req-1","result":{"b":1.50,"a":[ 1, 2 ],"_meta":{"x":"é"}}}"#
        );
    }
}
