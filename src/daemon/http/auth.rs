//! Who may write: a bearer token from `[server] tokens`, compared by its
//! SHA-256 in constant time against every configured token (no early exit,
//! so timing says nothing about which byte or which token differed). The
//! token is never logged, echoed or stored; the audit log names it by its
//! position in the config. Writes take the token from the `Authorization`
//! header (the API) or a form field typed by the user (the status page),
//! never from a cookie, so a page elsewhere cannot write on a visitor's
//! behalf.

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::actions::Actor;
use crate::config::ApiToken;

/// Why a write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// `[server] tokens` is empty: the API is read-only.
    NoTokens,
    /// No bearer token came with the request.
    Missing,
    /// A token came, and it is none of the configured ones.
    Wrong,
}

impl Denied {
    pub fn message(self) -> &'static str {
        match self {
            Denied::NoTokens => "writes are off: no API token is configured ([server] tokens)",
            Denied::Missing => "this needs a bearer token: Authorization: Bearer <token>",
            Denied::Wrong => "the bearer token is not one of [server] tokens",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Denied::NoTokens => StatusCode::FORBIDDEN,
            Denied::Missing | Denied::Wrong => StatusCode::UNAUTHORIZED,
        }
    }
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let mut response = (
            self.status(),
            axum::Json(serde_json::json!({ "error": self.message() })),
        )
            .into_response();
        if self.status() == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"dtswatch\""),
            );
        }
        response
    }
}

/// The bearer token of a request, if it carries one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Checks `presented` against `tokens`; the actor for the audit log when it matches.
pub fn authorize(
    tokens: &[ApiToken],
    presented: Option<&str>,
    from: IpAddr,
) -> Result<Actor, Denied> {
    if tokens.is_empty() {
        return Err(Denied::NoTokens);
    }
    let presented = presented.ok_or(Denied::Missing)?;
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut matched = None;
    for (i, token) in tokens.iter().enumerate() {
        let expected: [u8; 32] = match token {
            ApiToken::Plain(secret) => Sha256::digest(secret.expose().as_bytes()).into(),
            ApiToken::Sha256(d) => *d,
        };
        if constant_time_eq(&digest, &expected) && matched.is_none() {
            matched = Some(i + 1);
        }
    }
    matched.map(|n| Actor::api(n, from)).ok_or(Denied::Wrong)
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut difference = 0u8;
    for (x, y) in a.iter().zip(b) {
        difference |= x ^ y;
    }
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn tokens() -> Vec<ApiToken> {
        vec![
            ApiToken::Plain(Secret::new("first-token-0123456789")),
            ApiToken::Sha256(Sha256::digest(b"second-token-0123456789").into()),
        ]
    }

    #[test]
    fn a_configured_token_in_either_form_is_named_by_its_position() {
        let actor = authorize(&tokens(), Some("first-token-0123456789"), LOCAL).unwrap();
        assert_eq!(actor.as_str(), "api token #1 from 127.0.0.1");
        let actor = authorize(&tokens(), Some("second-token-0123456789"), LOCAL).unwrap();
        assert_eq!(actor.as_str(), "api token #2 from 127.0.0.1");
    }

    #[test]
    fn missing_wrong_and_unconfigured_tokens_are_refused_differently() {
        assert_eq!(authorize(&tokens(), None, LOCAL), Err(Denied::Missing));
        assert_eq!(
            authorize(&tokens(), Some("first-token-012345678"), LOCAL),
            Err(Denied::Wrong)
        );
        assert_eq!(
            authorize(&[], Some("first-token-0123456789"), LOCAL),
            Err(Denied::NoTokens)
        );
        assert_eq!(Denied::Wrong.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(Denied::NoTokens.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn only_a_bearer_authorization_header_carries_a_token() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "bearer  tok ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("tok"));
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
