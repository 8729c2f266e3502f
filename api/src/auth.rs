//! The API token: read-only requests need none; every action needs `Authorization: Bearer <token>`, compared in
//! constant time (both sides hashed first, so neither the content nor the length leaks through timing). Without
//! a configured token, actions are disabled.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

/// The token actions need, kept only as its hash.
#[derive(Clone)]
pub struct Token([u8; 32]);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// The token `secret`, surrounding white space removed; `None` when that leaves nothing.
    pub fn new(secret: &str) -> Option<Self> {
        let secret = secret.trim();
        (!secret.is_empty()).then(|| Self(*blake3::hash(secret.as_bytes()).as_bytes()))
    }

    /// Whether `presented` is the token, in time that does not depend on where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        let presented = blake3::hash(presented.trim().as_bytes());
        bool::from(self.0.ct_eq(presented.as_bytes()))
    }
}

/// Proof that a request carries the API token; taking it as a handler argument makes the handler an action.
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = state.token.as_ref() else {
            return Err(ApiError::ActionsDisabled);
        };
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        if token.matches(presented) { Ok(Operator) } else { Err(ApiError::Unauthorized) }
    }
}

#[cfg(test)]
mod tests {
    use super::Token;

    #[test]
    fn only_the_same_token_matches() {
        let token = Token::new(" s3cret\n").unwrap();
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches("s3cret2"));
        assert!(!token.matches(""));
        assert!(Token::new("  ").is_none());
    }
}
