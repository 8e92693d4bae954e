//! Lagless configuration: the TOML schema and its validation.
//!
//! Parts:
//! - [`schema`]: serde types mirroring the TOML file (`deny_unknown_fields`, so a typo is an error
//!   naming the key).
//! - [`consistency`]: the consistency modes, parsed from and printed as strings.
//! - [`validate`]: checks that cannot be expressed in types (addresses, one primary per cluster,
//!   unique names, well-formed password hashes) and produces a [`Config`] that the rest of the
//!   program can trust.
//!
//! Loading never touches the network; the caller decides what to do with a [`ConfigError`].

#![forbid(unsafe_code)]

pub mod consistency;
pub mod schema;
pub mod validate;

pub use consistency::{Consistency, ModeError};
pub use schema::*;
pub use validate::{
    Cluster, Config, ConfigError, ConsistencyConfig, Failover, Listener, Monitor, Pool, Routing,
    Rule, RuleTarget, Server, TableMatch, Timeouts, User,
};

/// Parses and validates a TOML document.
///
/// # Errors
/// A [`ConfigError`] naming the offending key when the text is not valid TOML, has an unknown
/// key, or holds an impossible value.
pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
    validate::validate(raw)
}

/// Reads, parses and validates a TOML file.
///
/// # Errors
/// As [`from_toml_str`], plus I/O errors reading the file.
pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    from_toml_str(&text)
}
