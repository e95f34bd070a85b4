//! Small helpers shared by the demo personalities: JSON-RPC error values, argument access,
//! pagination, RFC 3339 formatting and percent-encoding. No dependencies beyond serde_json.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// JSON-RPC / MCP error codes used by the demo server.
pub(super) const PARSE_ERROR: i64 = -32700;
pub(super) const INVALID_REQUEST: i64 = -32600;
pub(super) const METHOD_NOT_FOUND: i64 = -32601;
pub(super) const INVALID_PARAMS: i64 = -32602;
pub(super) const INTERNAL_ERROR: i64 = -32603;
/// MCP's "Resource not found".
pub(super) const RESOURCE_NOT_FOUND: i64 = -32002;

/// Items per page of every `*/list` method.
pub(super) const PAGE_SIZE: usize = 50;
/// At most this many values in one `completion/complete` answer (the MCP limit).
pub(super) const MAX_COMPLETIONS: usize = 100;

/// A JSON-RPC error to answer a request with.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RpcError {
    pub(super) code: i64,
    pub(super) message: String,
    pub(super) data: Option<Value>,
}

impl RpcError {
    pub(super) fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    pub(super) fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    pub(super) fn resource_not_found(uri: &str) -> Self {
        Self { code: RESOURCE_NOT_FOUND, message: "Resource not found".to_owned(), data: Some(json!({ "uri": uri })) }
    }

    /// The whole JSON-RPC error response for request `id`.
    pub(super) fn into_response(self, id: Value) -> Value {
        let mut error = Map::new();
        error.insert("code".to_owned(), Value::from(self.code));
        error.insert("message".to_owned(), Value::String(self.message));
        if let Some(data) = self.data {
            error.insert("data".to_owned(), data);
        }
        json!({ "jsonrpc": "2.0", "id": id, "error": error })
    }
}

pub(super) type RpcResult = Result<Value, RpcError>;

/// A JSON-RPC success response.
pub(super) fn success_response(id: Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// A JSON-RPC notification.
pub(super) fn notification(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}

/// A successful `tools/call` result with one text item.
pub(super) fn tool_text(text: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }] })
}

/// A successful `tools/call` result with one text item and `structuredContent`.
pub(super) fn tool_structured(text: impl Into<String>, structured: Value) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }], "structuredContent": structured })
}

/// A tool execution error: a normal result with `isError: true`, not a protocol error.
pub(super) fn tool_error(text: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }], "isError": true })
}

/// Reads a required string argument, with `what` ("tool 'add_note'") naming the caller for
/// the error message.
pub(super) fn required_str<'a>(args: &'a Map<String, Value>, key: &str, what: &str) -> Result<&'a str, RpcError> {
    match args.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(RpcError::invalid_params(format!(
            "Invalid arguments for {what}: missing required string argument '{key}'"
        ))),
        Some(other) => Err(RpcError::invalid_params(format!(
            "Invalid arguments for {what}: argument '{key}' must be a string, got {}",
            type_name(other)
        ))),
    }
}

/// Reads an optional integer argument within `min..=max`. JSON numbers with a zero fractional
/// part (`60.0`) count as integers, as in JSON Schema.
pub(super) fn optional_int(
    args: &Map<String, Value>,
    key: &str,
    min: i64,
    max: i64,
    what: &str,
) -> Result<Option<i64>, RpcError> {
    let Some(value) = args.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match as_integer(value) {
        Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
        Some(n) => Err(RpcError::invalid_params(format!(
            "Invalid arguments for {what}: argument '{key}' must be between {min} and {max}, got {n}"
        ))),
        None => Err(RpcError::invalid_params(format!(
            "Invalid arguments for {what}: argument '{key}' must be an integer, got {}",
            describe(value)
        ))),
    }
}

/// Reads a required integer argument within `min..=max`.
pub(super) fn required_int(
    args: &Map<String, Value>,
    key: &str,
    min: i64,
    max: i64,
    what: &str,
) -> Result<i64, RpcError> {
    optional_int(args, key, min, max, what)?.ok_or_else(|| {
        RpcError::invalid_params(format!("Invalid arguments for {what}: missing required integer argument '{key}'"))
    })
}

/// Reads a required number argument.
pub(super) fn required_number<'a>(
    args: &'a Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<&'a serde_json::Number, RpcError> {
    match args.get(key) {
        Some(Value::Number(n)) => Ok(n),
        None | Some(Value::Null) => Err(RpcError::invalid_params(format!(
            "Invalid arguments for {what}: missing required number argument '{key}'"
        ))),
        Some(other) => Err(RpcError::invalid_params(format!(
            "Invalid arguments for {what}: argument '{key}' must be a number, got {}",
            type_name(other)
        ))),
    }
}

/// A JSON value as an integer, if it is one (`3` or `3.0`).
pub(super) fn as_integer(value: &Value) -> Option<i64> {
    let Value::Number(n) = value else { return None };
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // i64::MIN as f64 is exact; the upper bound is exclusive because i64::MAX rounds up.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 { Some(f as i64) } else { None }
}

pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => type_name(other).to_owned(),
    }
}

/// One page of `items` under `key`, starting at the offset in `params.cursor` (an opaque string
/// to the client; here the decimal offset). A cursor past the end gives an empty last page (the
/// list may have shrunk since); a cursor that is not an offset is invalid params.
pub(super) fn paginate(mut items: Vec<Value>, params: &Map<String, Value>, key: &str) -> RpcResult {
    let start = match params.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(Value::String(s)) => s.parse::<usize>().map_err(|_| {
            RpcError::invalid_params(format!("Invalid cursor: {s:?} is not a cursor this server returned"))
        })?,
        Some(other) => {
            return Err(RpcError::invalid_params(format!(
                "Invalid cursor: must be a string, got {}",
                type_name(other)
            )));
        }
    };
    let len = items.len();
    let start = start.min(len);
    let end = start.saturating_add(PAGE_SIZE).min(len);
    let page: Vec<Value> = items.drain(start..end).collect();
    let mut result = Map::new();
    result.insert(key.to_owned(), Value::Array(page));
    if end < len {
        result.insert("nextCursor".to_owned(), Value::String(end.to_string()));
    }
    Ok(Value::Object(result))
}

/// A `completion/complete` result from every candidate starting with `prefix` (ignoring case).
pub(super) fn completion<'a>(candidates: impl IntoIterator<Item = &'a str>, prefix: &str) -> Value {
    let prefix = prefix.to_lowercase();
    let matches: Vec<&str> = candidates.into_iter().filter(|c| c.to_lowercase().starts_with(&prefix)).collect();
    let total = matches.len();
    let values: Vec<&str> = matches.into_iter().take(MAX_COMPLETIONS).collect();
    json!({ "completion": { "values": values, "total": total, "hasMore": total > MAX_COMPLETIONS } })
}

/// Seconds since the Unix epoch, negative before it.
pub(super) fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// `unix_secs` as an RFC 3339 timestamp in the zone `offset_minutes` east of UTC
/// (`2023-11-14T22:13:20Z`, `2023-11-15T03:43:20+05:30`). Whole seconds.
pub(super) fn rfc3339(unix_secs: i64, offset_minutes: i64) -> String {
    let local = unix_secs.saturating_add(offset_minutes.saturating_mul(60));
    let days = local.div_euclid(86_400);
    let secs_of_day = local.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (secs_of_day / 3600, secs_of_day % 3600 / 60, secs_of_day % 60);
    let zone = if offset_minutes == 0 {
        "Z".to_owned()
    } else {
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let abs = offset_minutes.unsigned_abs();
        format!("{sign}{:02}:{:02}", abs / 60, abs % 60)
    };
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{zone}")
}

/// Days since 1970-01-01 → proleptic Gregorian (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Percent-encodes everything but RFC 3986 unreserved characters (so `/`, space, `%` and all
/// non-ASCII are encoded): the result is one URI path segment.
pub(super) fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// Decodes `%XX` escapes; other characters pass through. `None` for a malformed escape or a
/// result that is not UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    fn hex(b: u8) -> Option<u8> {
        char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
