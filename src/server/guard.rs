//! Checks every MCP request passes before it is read: Host, Origin, bearer token.
//!
//! Host and Origin are what stop DNS rebinding: a web page whose name resolves to 127.0.0.1
//! still sends its own name in `Host` and `Origin`. Loopback names are always allowed; others
//! only when listed. When mcpmux listens on a non-loopback address (where a token is required),
//! any Host is accepted unless `allowedHosts` is set.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::config::Settings;
use crate::error::HttpError;

/// Runs the checks, then the handler.
pub async fn check(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let settings = app.gateway.settings();
    if let Err(e) = check_headers(req.headers(), &settings, app.local_addr) {
        tracing::debug!(error = %e, "Refused a request.");
        return e.into_response();
    }
    next.run(req).await
}

fn check_headers(headers: &HeaderMap, settings: &Settings, local: SocketAddr) -> Result<(), HttpError> {
    if let Some(host) = headers.get(header::HOST) {
        let host = host.to_str().unwrap_or_default();
        if !host_allowed(host, settings, local) {
            return Err(HttpError::ForbiddenHost(host.to_owned()));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !origin_allowed(origin, &settings.allowed_origins) {
            return Err(HttpError::ForbiddenOrigin(origin.to_owned()));
        }
    }
    if let Some(token) = &settings.auth_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        match presented {
            Some(p) if constant_time_eq(p.as_bytes(), token.expose().as_bytes()) => {}
            _ => return Err(HttpError::Unauthorized),
        }
    }
    Ok(())
}

/// `localhost`, `127.0.0.1` (any 127.x), `[::1]`, with or without a port.
pub fn is_loopback_host(host_and_port: &str) -> bool {
    let host = strip_port(host_and_port);
    let suffix = b".localhost";
    host.eq_ignore_ascii_case("localhost")
        || host == "[::1]"
        || (host.len() >= suffix.len() && host.as_bytes()[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix))
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.find(']') {
            Some(i) => &host[..i + 2],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

fn host_allowed(host: &str, settings: &Settings, local: SocketAddr) -> bool {
    if is_loopback_host(host) {
        return true;
    }
    if settings.allowed_hosts.is_empty() {
        return !local.ip().is_loopback();
    }
    settings
        .allowed_hosts
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(strip_port(host)))
}

fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    if let Some((_, rest)) = origin.split_once("://")
        && is_loopback_host(rest.trim_end_matches('/'))
    {
        return true;
    }
    allowed.iter().any(|a| {
        if a == "*" || a.eq_ignore_ascii_case(origin) {
            return true;
        }
        match a.strip_suffix(":*") {
            Some(base) => strip_port(origin).eq_ignore_ascii_case(base),
            None => false,
        }
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in ["localhost", "localhost:8080", "127.0.0.1:1", "127.1.2.3", "[::1]:80", "[::1]"] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["evil.example.com", "evil.example.com:8080", "10.0.0.1", "localhost.evil.com", "[::2]:1"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn origins() {
        let allowed = vec!["https://app.example.com".to_owned(), "http://dev.example.com:*".to_owned()];
        assert!(origin_allowed("http://localhost:3000", &allowed));
        assert!(origin_allowed("https://app.example.com", &allowed));
        assert!(origin_allowed("http://dev.example.com:5173", &allowed));
        assert!(!origin_allowed("http://evil.example.com", &allowed));
        assert!(!origin_allowed("null", &allowed));
    }

    #[test]
    fn hosts_depend_on_listen_address() {
        let s = Settings::default();
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap_or_else(|_| unreachable!());
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap_or_else(|_| unreachable!());
        assert!(!host_allowed("evil.example.com", &s, lo));
        assert!(host_allowed("mcpmux.internal:8080", &s, any));
        let s = Settings { allowed_hosts: vec!["gw.example.com".into()], ..Settings::default() };
        assert!(host_allowed("gw.example.com:8080", &s, lo));
        assert!(!host_allowed("other.example.com", &s, any));
    }
}
