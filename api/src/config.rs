//! Where the operator's view listens and the token its actions need, parsed once from the environment.

use crate::auth::Token;
use std::net::SocketAddr;
use std::path::Path;

/// The default listening address: this machine only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// Settings of the HTTP server.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where to listen (`SCENEQUEUE_HTTP_ADDR`).
    pub addr: SocketAddr,
    /// The token actions need (`SCENEQUEUE_API_TOKEN`, or the first line of `SCENEQUEUE_API_TOKEN_FILE`); `None`
    /// disables actions.
    pub token: Option<Token>,
}

/// Why the settings are not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The token file could not be read.
    #[error("cannot read the API token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Both a token and a token file were given.
    #[error("give the API token or a token file, not both")]
    TwoTokens,
}

impl ApiConfig {
    /// Settings from an address, a token and a token file (at most one of the two).
    pub fn new(addr: SocketAddr, token: Option<&str>, token_file: Option<&Path>) -> Result<Self, ConfigError> {
        let token = match (token, token_file) {
            (Some(_), Some(_)) => return Err(ConfigError::TwoTokens),
            (Some(t), None) => Token::new(t),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::TokenFile { path: path.display().to_string(), source })?;
                Token::new(text.lines().next().unwrap_or(""))
            }
            (None, None) => None,
        };
        Ok(Self { addr, token })
    }
}
