//! Admin access: with a token configured, every admin route (raw events, queues, dead
//! letters) needs `Authorization: Bearer <token>`, compared in constant time; without one,
//! the app serves admin routes only on a loopback address unless told otherwise.
//!
//! Open admin routes (no token) also refuse what a web page in a browser could send them:
//! a request whose `Host` is not a loopback name (a DNS-rebinding page reaching
//! `127.0.0.1` under its own name) unless `--insecure-admin` opened them on a non-loopback
//! address (the app then answers the network's names for itself), and
//! a cross-origin request (an `Origin` other than the `Host`, or `Sec-Fetch-Site:
//! cross-site`). Tools such as curl and the `fairway` CLI send neither. With a token, a page
//! cannot add the `Authorization` header to a cross-origin request without the app's
//! consent (CORS), so the token is the guard.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// Who may call admin routes.
#[derive(Clone, Debug, Default)]
pub struct AdminAccess {
    token: Option<Arc<str>>,
    insecure: bool,
    /// Set when the app serves open admin routes on a non-loopback address
    /// (`--insecure-admin`): any `Host` is then the app's own.
    network_facing: Arc<AtomicBool>,
}

/// The app would serve admin routes to the network without a token.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to serve admin routes on {address} without a token: set --admin-token (or \
     FAIRWAY_ADMIN_TOKEN), listen on a loopback address, or pass --insecure-admin to accept it"
)]
pub struct InsecureAdmin {
    /// The non-loopback address.
    pub address: SocketAddr,
}

impl AdminAccess {
    /// Access with `token` (none or empty: open), and whether a tokenless admin may face
    /// the network. A token of only whitespace is refused: no request could carry it.
    /// Spaces around the token are not part of it.
    pub fn new(token: Option<String>, insecure: bool) -> Result<Self, BlankToken> {
        let token = token.filter(|t| !t.is_empty());
        if token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(BlankToken);
        }
        let token = token.map(|t| Arc::from(t.trim()));
        Ok(AdminAccess { token, insecure, network_facing: Arc::default() })
    }

    /// Whether admin routes are open to the network (no token, `--insecure-admin`, a
    /// non-loopback `address`).
    pub fn exposed(&self, address: SocketAddr) -> bool {
        self.token.is_none() && !is_loopback(address.ip())
    }

    /// Whether a token guards admin routes.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Refuses to serve on a non-loopback `address` with open admin routes, unless told to.
    pub fn check_address(&self, address: SocketAddr) -> Result<(), InsecureAdmin> {
        if self.token.is_none() && !is_loopback(address.ip()) {
            if !self.insecure {
                return Err(InsecureAdmin { address });
            }
            self.network_facing.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether a request with these headers may use admin routes.
    fn admits(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(token) = &self.token else { return self.admits_open(headers) };
        let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
            let (scheme, credentials) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(credentials)
        });
        let Some(given) = bearer else {
            return Err(ApiError::Unauthorized(
                "admin routes need the header `Authorization: Bearer <token>` (the app's --admin-token)".into(),
            ));
        };
        if bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("the admin token is not the app's".into()))
        }
    }

    /// Open admin routes: refuses requests a browser page could make (see the module).
    fn admits_open(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let host = text(header::HOST);
        if headers.get_all(header::HOST).iter().count() > 1 {
            return Err(ApiError::Forbidden("admin routes refuse a request with two Host headers".into()));
        }
        if !self.network_facing.load(Ordering::Relaxed) && host.is_some_and(|host| !is_loopback_host(host)) {
            return Err(ApiError::Forbidden(format!(
                "admin routes without a token answer loopback names only, not Host {:?}: use 127.0.0.1 or \
                 localhost, or set --admin-token",
                host.unwrap_or_default()
            )));
        }
        let origin_host = text(header::ORIGIN).map(|o| o.split_once("://").map_or(o, |(_, rest)| rest));
        let cross_origin = match (origin_host, host) {
            (Some(origin), Some(host)) => !origin.eq_ignore_ascii_case(host),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if cross_origin || text(header::HeaderName::from_static("sec-fetch-site")) == Some("cross-site") {
            return Err(ApiError::Forbidden(
                "admin routes without a token refuse cross-origin requests: set --admin-token to call them from \
                 another web page"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The admin token was only whitespace.
#[derive(Debug, thiserror::Error)]
#[error("the admin token (--admin-token or FAIRWAY_ADMIN_TOKEN) is blank: give a real token, or none")]
pub struct BlankToken;

/// Whether `ip` is a loopback address, IPv4-mapped IPv6 (`::ffff:127.0.0.1`) included.
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Whether a `Host` header names this machine: `localhost` (or a name under it), or a
/// loopback address, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let port_ok = |rest: &str| rest.is_empty() || rest.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok());
    let name = match host.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((ip, rest)) if port_ok(rest) => ip,
            _ => return false,
        },
        None => {
            host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<IpAddr>().is_ok_and(is_loopback)
}

/// Middleware of admin routes.
pub(super) async fn require_admin(State(access): State<AdminAccess>, request: Request, next: Next) -> Response {
    // A request in absolute form (`GET http://name/...`) names its host in the URI: it
    // counts as its Host.
    let mut headers = std::borrow::Cow::Borrowed(request.headers());
    if let Some(authority) = request.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
        headers.to_mut().insert(header::HOST, authority);
    }
    match access.admits(&headers) {
        Ok(()) => next.run(request).await,
        Err(refused) => {
            let mut response = refused.into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (header::HeaderName::from_static(name), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    #[test]
    fn a_token_is_needed_and_must_match() {
        let open = AdminAccess::new(None, false).unwrap();
        assert!(open.admits(&HeaderMap::new()).is_ok());
        let guarded = AdminAccess::new(Some("s3cret".into()), false).unwrap();
        let status = |header: Option<&str>| {
            let pairs: Vec<_> = header.map(|h| ("authorization", h)).into_iter().collect();
            guarded.admits(&headers(&pairs)).map_err(|e| e.status().as_u16())
        };
        assert_eq!(status(None), Err(401));
        assert_eq!(status(Some("Basic s3cret")), Err(401));
        assert_eq!(status(Some("Bearer s3cre")), Err(403));
        assert_eq!(status(Some("Bearer s3cret!")), Err(403));
        assert_eq!(status(Some("Bearer s3cret")), Ok(()));
        assert_eq!(status(Some("bearer s3cret")), Ok(()), "the scheme is case-insensitive");
        let page = headers(&[("authorization", "Bearer s3cret"), ("host", "evil.example"), ("origin", "https://x")]);
        assert!(guarded.admits(&page).is_ok(), "with a token, the token is the guard");
        assert!(AdminAccess::new(Some("  ".into()), false).is_err(), "a blank token is refused");
        let spaced = AdminAccess::new(Some(" s3cret ".into()), false).unwrap();
        assert!(spaced.admits(&headers(&[("authorization", "Bearer s3cret")])).is_ok(), "spaces are not the token");
    }

    #[test]
    fn open_admin_routes_refuse_what_a_browser_page_could_send() {
        let open = AdminAccess::new(None, false).unwrap();
        let status = |pairs: &[(&'static str, &str)]| open.admits(&headers(pairs)).map_err(|e| e.status().as_u16());
        for host in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080", "app.localhost", "127.1.2.3"] {
            assert_eq!(status(&[("host", host)]), Ok(()), "{host}");
        }
        assert_eq!(status(&[]), Ok(()), "no Host at all (HTTP/1.0)");
        let bad = [
            "attacker.example:8080",
            "evil.example",
            "10.0.0.1:8080",
            "localhost.evil.example",
            "[::1]evil.com",
            "[::1]:80x",
        ];
        for host in bad {
            assert_eq!(status(&[("host", host)]), Err(403), "DNS rebinding under {host}");
        }
        let same = [("host", "localhost:8080"), ("origin", "http://localhost:8080")];
        assert_eq!(status(&same), Ok(()), "the admin page itself");
        assert_eq!(status(&[("host", "localhost:8080"), ("origin", "https://evil.example")]), Err(403));
        assert_eq!(status(&[("host", "localhost:8080"), ("origin", "null")]), Err(403));
        assert_eq!(status(&[("host", "localhost:8080"), ("sec-fetch-site", "cross-site")]), Err(403));
        let mut two_hosts = headers(&[("host", "localhost")]);
        two_hosts.append(header::HOST, HeaderValue::from_static("attacker.example"));
        assert_eq!(open.admits(&two_hosts).map_err(|e| e.status().as_u16()), Err(403));
        let exposed = AdminAccess::new(None, true).unwrap();
        let any_host = headers(&[("host", "app.example.org:8080")]);
        assert!(exposed.admits(&any_host).is_err(), "--insecure-admin on loopback keeps the Host check");
        exposed.check_address("0.0.0.0:8080".parse().unwrap()).unwrap();
        assert!(exposed.admits(&any_host).is_ok(), "--insecure-admin on the network answers its names");
        let cross = headers(&[("host", "app.example.org:8080"), ("origin", "https://evil.example")]);
        assert!(exposed.admits(&cross).is_err(), "but still no cross-origin page");
    }

    #[test]
    fn open_admin_routes_stay_on_loopback_unless_told_otherwise() {
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let network: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(AdminAccess::new(None, false).unwrap().check_address(loopback).is_ok());
        assert!(AdminAccess::new(None, false).unwrap().check_address("[::1]:8080".parse().unwrap()).is_ok());
        let refused = AdminAccess::new(None, false).unwrap().check_address(network).unwrap_err();
        assert!(refused.to_string().contains("--admin-token"), "{refused}");
        assert!(
            AdminAccess::new(Some(String::new()), false).unwrap().check_address(network).is_err(),
            "an empty token is none"
        );
        assert!(AdminAccess::new(Some("t".into()), false).unwrap().check_address(network).is_ok());
        assert!(AdminAccess::new(None, true).unwrap().check_address(network).is_ok());
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:8080".parse().unwrap();
        assert!(AdminAccess::new(None, false).unwrap().check_address(mapped).is_ok(), "IPv4-mapped loopback");
    }
}
