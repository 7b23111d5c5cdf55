//! Admin access: with a token configured, every admin route (raw events, queues, dead
//! letters) needs `Authorization: Bearer <token>`, compared in constant time; without one,
//! the app serves admin routes only on a loopback address unless told otherwise.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// Who may call admin routes.
#[derive(Clone, Debug, Default)]
pub struct AdminAccess {
    token: Option<Arc<str>>,
    insecure: bool,
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
    /// Access with `token` (none: open), and whether a tokenless admin may face the network.
    pub fn new(token: Option<String>, insecure: bool) -> Self {
        AdminAccess { token: token.filter(|t| !t.is_empty()).map(Arc::from), insecure }
    }

    /// Whether a token guards admin routes.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Refuses to serve on a non-loopback `address` with open admin routes, unless told to.
    pub fn check_address(&self, address: SocketAddr) -> Result<(), InsecureAdmin> {
        if self.token.is_none() && !self.insecure && !address.ip().is_loopback() {
            return Err(InsecureAdmin { address });
        }
        Ok(())
    }

    /// Whether `authorization` (a header value) carries the token.
    fn admits(&self, authorization: Option<&HeaderValue>) -> Result<(), ApiError> {
        let Some(token) = &self.token else { return Ok(()) };
        let Some(given) = authorization.and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) else {
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
}

/// Middleware of admin routes.
pub(super) async fn require_admin(State(access): State<AdminAccess>, request: Request, next: Next) -> Response {
    match access.admits(request.headers().get(header::AUTHORIZATION)) {
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

    #[test]
    fn a_token_is_needed_and_must_match() {
        let open = AdminAccess::new(None, false);
        assert!(open.admits(None).is_ok());
        let guarded = AdminAccess::new(Some("s3cret".into()), false);
        let status = |header: Option<&str>| {
            let value = header.map(|h| HeaderValue::from_str(h).unwrap());
            guarded.admits(value.as_ref()).map_err(|e| e.status().as_u16())
        };
        assert_eq!(status(None), Err(401));
        assert_eq!(status(Some("Basic s3cret")), Err(401));
        assert_eq!(status(Some("Bearer s3cre")), Err(403));
        assert_eq!(status(Some("Bearer s3cret!")), Err(403));
        assert_eq!(status(Some("Bearer s3cret")), Ok(()));
    }

    #[test]
    fn open_admin_routes_stay_on_loopback_unless_told_otherwise() {
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let network: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(AdminAccess::new(None, false).check_address(loopback).is_ok());
        assert!(AdminAccess::new(None, false).check_address("[::1]:8080".parse().unwrap()).is_ok());
        let refused = AdminAccess::new(None, false).check_address(network).unwrap_err();
        assert!(refused.to_string().contains("--admin-token"), "{refused}");
        assert!(AdminAccess::new(Some(String::new()), false).check_address(network).is_err(), "an empty token is none");
        assert!(AdminAccess::new(Some("t".into()), false).check_address(network).is_ok());
        assert!(AdminAccess::new(None, true).check_address(network).is_ok());
    }
}
