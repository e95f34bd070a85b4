//! Server-sent events framing.

use bytes::Bytes;
use serde_json::Value;

/// One `message` event carrying a JSON-RPC message.
pub fn event(json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 24);
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// A `message` event for a value.
pub fn event_value(v: &Value) -> Bytes {
    event(&serde_json::to_vec(v).unwrap_or_default())
}

/// A comment line that keeps idle connections open through proxies.
pub fn keep_alive() -> Bytes {
    Bytes::from_static(b": keep-alive\n\n")
}
