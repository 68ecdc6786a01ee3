//! What goes wrong while loading a configuration, and where.
//!
//! Every error and warning names the file (the included one when the problem
//! is inside an `<?include?>`d file), `line:column` when known, and the JSON
//! path of the offending value, so an operator can go straight to it.

use std::fmt;

/// A place in a configuration file: the file name, and line and column
/// (both 1-based, the column counted in characters) when they are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as it was named when loaded or included.
    pub file: String,
    /// 1-based line, if known.
    pub line: Option<u32>,
    /// 1-based column in characters, if known.
    pub column: Option<u32>,
}

impl Location {
    /// A location that only names a file.
    pub fn file_only(file: impl Into<String>) -> Self {
        Location { file: file.into(), line: None, column: None }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}", self.file),
            (Some(l), None) => write!(f, "{}:{l}", self.file),
            _ => f.write_str(&self.file),
        }
    }
}

/// Why a configuration was refused. The `Display` form is one line:
/// `file:line:column: json.path: what is wrong`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file itself could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file as named by the caller.
        file: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not JSON once Kea's comments and includes are handled:
    /// bad JSON, an unterminated `/* */` comment, a malformed directive.
    #[error("{at}: {message}")]
    Syntax {
        /// Where the problem was detected.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// An `<?include "file"?>` directive could not be honoured.
    #[error("{at}: cannot include \"{target}\": {message}")]
    Include {
        /// The directive's location.
        at: Location,
        /// The file name as written in the directive.
        target: String,
        /// Why (not found, include loop, nesting too deep, …).
        message: String,
    },
    /// A key xdhcp does not know or does not support. Refused rather than
    /// ignored so that a setting the operator relies on never silently does
    /// nothing.
    #[error("{at}: {path}: unknown or unsupported key \"{key}\"")]
    UnknownKey {
        /// The key's location.
        at: Location,
        /// JSON path of the key itself, e.g. `Dhcp4.subnet4[0].client-class`.
        path: String,
        /// The key.
        key: String,
    },
    /// A value of the wrong type or an invalid value or combination.
    #[error("{at}: {path}: {message}")]
    Invalid {
        /// The value's location.
        at: Location,
        /// JSON path of the value, e.g. `Dhcp4.subnet4[2].pools[0].pool`.
        path: String,
        /// What is wrong (never contains a secret).
        message: String,
    },
}

impl ConfigError {
    /// The location this error points at, when it has one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { at, .. }
            | ConfigError::Include { at, .. }
            | ConfigError::UnknownKey { at, .. }
            | ConfigError::Invalid { at, .. } => Some(at),
        }
    }

    /// The two arguments of Kea's `DHCP4_PARSER_FAIL` line for this error
    /// ("failed to create or run parser for configuration element %1: %2"):
    /// the top-level `Dhcp4` element, and the reason as Kea words it (Kea
    /// prefixes what goes wrong inside a subnet with "subnet configuration
    /// failed: "). `None` for errors Kea reports before its parsers run
    /// (unreadable file, JSON syntax).
    pub fn kea_parser_fail(&self) -> Option<(String, String)> {
        let (ConfigError::Invalid { path, message, .. } | ConfigError::UnknownKey { path, key: message, .. }) = self else {
            return None;
        };
        let rest = path.strip_prefix("Dhcp4.")?;
        let element = rest.split(['.', '[']).next().filter(|e| !e.is_empty())?;
        let reason = match self {
            ConfigError::UnknownKey { .. } => format!("unsupported parameter '{message}' ({path})"),
            _ if rest.contains("subnet4[") => format!("subnet configuration failed: {message}"),
            _ => message.clone(),
        };
        Some((element.to_owned(), reason))
    }

    /// The JSON path this error is about, when it has one.
    pub fn path(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { path, .. } | ConfigError::Invalid { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// Something accepted but not acted upon (a harmless key xdhcp ignores, or a
/// Kea quirk reproduced on purpose). Collected in `Config::warnings` for the
/// daemon to log at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where the key or value is.
    pub at: Location,
    /// JSON path of the key or value.
    pub path: String,
    /// What is ignored or assumed, and why.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.at, self.path, self.message)
    }
}

/// A stage-2 problem before its location is known: a JSON path and a message.
/// The loader turns it into [`ConfigError::Invalid`] by looking the path up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// JSON path, e.g. `Dhcp4.subnet4[0].pools[1].pool`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Invalid {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for Invalid {}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(path: &str, message: &str) -> ConfigError {
        ConfigError::Invalid { at: Location::file_only("f"), path: path.into(), message: message.into() }
    }

    #[test]
    fn kea_parser_fail_names_the_top_level_element_and_wraps_subnet_errors() {
        assert_eq!(
            invalid("Dhcp4.shared-networks[0].subnet4[1].pools[0].pool", "bad").kea_parser_fail(),
            Some(("shared-networks".into(), "subnet configuration failed: bad".into()))
        );
        assert_eq!(invalid("Dhcp4.valid-lifetime", "bad").kea_parser_fail(), Some(("valid-lifetime".into(), "bad".into())));
        assert_eq!(invalid("", "bad").kea_parser_fail(), None);
        let syntax = ConfigError::Syntax { at: Location::file_only("f"), message: "x".into() };
        assert_eq!(syntax.kea_parser_fail(), None);
    }
}
