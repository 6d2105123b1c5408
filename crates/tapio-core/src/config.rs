//! The live runtime keys of the `tapio-config` ConfigMap.
//!
//! Values are parsed case-insensitively and trimmed (a ConfigMap value edited by hand often
//! ends with a newline). A value that does not parse is refused with an error naming the
//! key and the value; the previous value stays in force.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub const KEY_LOG_LEVEL: &str = "log-level";
pub const KEY_LOAD_SHEDDING: &str = "load-shedding-enabled";
pub const KEY_CORRELATION_DEPTH: &str = "correlation-depth";
pub const KEY_AUDIT_LEVEL: &str = "audit-level";
pub const KEYS: [&str; 4] = [
    KEY_LOG_LEVEL,
    KEY_LOAD_SHEDDING,
    KEY_CORRELATION_DEPTH,
    KEY_AUDIT_LEVEL,
];

macro_rules! keyword_enum {
    ($(#[$m:meta])* $name:ident, $key:expr, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = ConfigError;
            fn from_str(s: &str) -> Result<Self, ConfigError> {
                let t = s.trim();
                $(if t.eq_ignore_ascii_case($text) { return Ok(Self::$variant); })+
                Err(ConfigError::new($key, s, Self::NAMES))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

keyword_enum!(
    /// `log-level`.
    LogLevel, KEY_LOG_LEVEL, {
        Error => "ERROR", Warn => "WARN", Info => "INFO", Debug => "DEBUG", Trace => "TRACE",
    }
);
keyword_enum!(
    /// `correlation-depth` (see DESIGN: basic, standard, deep).
    CorrelationDepth, KEY_CORRELATION_DEPTH, {
        Basic => "basic", Standard => "standard", Deep => "deep",
    }
);
keyword_enum!(
    /// `audit-level`.
    AuditLevel, KEY_AUDIT_LEVEL, {
        Off => "OFF", Basic => "BASIC", Verbose => "VERBOSE",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config key `{key}`: value {value:?} is invalid; use one of {allowed}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub allowed: String,
}

impl ConfigError {
    fn new(key: &str, value: &str, allowed: &[&str]) -> Self {
        Self {
            key: key.to_owned(),
            value: value.trim().chars().take(100).collect(),
            allowed: allowed.join(", "),
        }
    }
}

fn parse_bool(key: &str, s: &str) -> Result<bool, ConfigError> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if t.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ConfigError::new(key, s, &["true", "false"]))
    }
}

/// The effective runtime configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    pub log_level: LogLevel,
    pub load_shedding_enabled: bool,
    pub correlation_depth: CorrelationDepth,
    pub audit_level: AuditLevel,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            log_level: LogLevel::Info,
            load_shedding_enabled: false,
            correlation_depth: CorrelationDepth::Standard,
            audit_level: AuditLevel::Basic,
        }
    }
}

impl RuntimeConfig {
    /// Apply one key's value. Unknown keys are an error; the caller decides whether to warn.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            KEY_LOG_LEVEL => self.log_level = value.parse()?,
            KEY_LOAD_SHEDDING => self.load_shedding_enabled = parse_bool(key, value)?,
            KEY_CORRELATION_DEPTH => self.correlation_depth = value.parse()?,
            KEY_AUDIT_LEVEL => self.audit_level = value.parse()?,
            _ => return Err(ConfigError::new(key, value, &KEYS)),
        }
        Ok(())
    }

    /// The value of one key as it would be written in the ConfigMap.
    pub fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            KEY_LOG_LEVEL => self.log_level.to_string(),
            KEY_LOAD_SHEDDING => self.load_shedding_enabled.to_string(),
            KEY_CORRELATION_DEPTH => self.correlation_depth.to_string(),
            KEY_AUDIT_LEVEL => self.audit_level.to_string(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_case_insensitively_and_trimmed() {
        let mut c = RuntimeConfig::default();
        c.apply("log-level", "debug\n").expect("valid");
        c.apply("correlation-depth", " Deep ").expect("valid");
        c.apply("load-shedding-enabled", "TRUE").expect("valid");
        c.apply("audit-level", "verbose").expect("valid");
        assert_eq!(c.log_level, LogLevel::Debug);
        assert_eq!(c.correlation_depth, CorrelationDepth::Deep);
        assert!(c.load_shedding_enabled);
        assert_eq!(c.audit_level, AuditLevel::Verbose);
    }

    #[test]
    fn invalid_value_names_key_and_value_and_keeps_previous() {
        let mut c = RuntimeConfig::default();
        let e = c
            .apply("correlation-depth", "extreme")
            .expect_err("invalid");
        assert!(e.to_string().contains("correlation-depth"));
        assert!(e.to_string().contains("extreme"));
        assert!(e.to_string().contains("basic, standard, deep"));
        assert_eq!(c.correlation_depth, CorrelationDepth::Standard);
        assert!(c.apply("load-shedding-enabled", "yes").is_err());
        assert!(!c.load_shedding_enabled);
    }
}
