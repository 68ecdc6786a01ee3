//! Kea's client-name parameters: `ddns-replace-client-name`,
//! `ddns-generated-prefix`, `ddns-qualifying-suffix`, `hostname-char-set`,
//! `hostname-char-replacement` (and the `ddns-*` flags that only matter
//! when DNS updates are on), at global, shared-network and subnet level,
//! inherited the way Kea 2.2 inherits them.
//!
//! DNS updates themselves are refused (`dhcp-ddns.enable-updates`), but
//! Kea still applies these parameters to the name a client sends in option
//! 81 (client FQDN): the name stored in the lease and sent back is the
//! sanitised, qualified one (`dhcp::client_name`). So a config that sets
//! them must be read, not refused, and an invalid one refused by path.

use super::error::Invalid;

/// Kea's `ddns-replace-client-name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplaceClientName {
    /// Keep the client's name (Kea's default).
    #[default]
    Never,
    /// Always replace it with a generated one.
    Always,
    /// Replace a name the client sent.
    WhenPresent,
    /// Generate one when the client sent none.
    WhenNotPresent,
}

impl ReplaceClientName {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "never" => ReplaceClientName::Never,
            "always" => ReplaceClientName::Always,
            "when-present" => ReplaceClientName::WhenPresent,
            "when-not-present" => ReplaceClientName::WhenNotPresent,
            _ => return None,
        })
    }
}

/// `hostname-char-set` / `hostname-char-replacement`: every match of the
/// set in a client's name is replaced (Kea's `StringSanitizer`).
///
/// Kea compiles the set as a POSIX extended regular expression; this uses
/// the `regex` crate, whose syntax agrees on the bracket expressions such
/// sets are written with (Kea's default `[^A-Za-z0-9.-]`). The replacement
/// is literal.
#[derive(Debug, Clone)]
pub struct HostnameSanitizer {
    char_set: String,
    replacement: String,
    regex: regex::Regex,
}

impl PartialEq for HostnameSanitizer {
    fn eq(&self, other: &Self) -> bool {
        self.char_set == other.char_set && self.replacement == other.replacement
    }
}

impl HostnameSanitizer {
    /// Longest set or replacement Kea accepts (`StringSanitizer::MAX_DATA_SIZE`).
    const MAX: usize = 4096;

    fn new(char_set: &str, replacement: &str, path: &str) -> Result<Self, Invalid> {
        if char_set.len() > Self::MAX || replacement.len() > Self::MAX {
            return Err(Invalid::new(path, format!("longer than Kea's limit of {} characters", Self::MAX)));
        }
        let regex = regex::Regex::new(char_set)
            .map_err(|e| Invalid::new(path, format!("'{char_set}' is not a valid regular expression: {e}")))?;
        Ok(HostnameSanitizer { char_set: char_set.to_string(), replacement: replacement.to_string(), regex })
    }

    /// `s` with every match of the set replaced.
    pub fn scrub(&self, s: &str) -> String {
        self.regex.replace_all(s, regex::NoExpand(&self.replacement)).into_owned()
    }
}

/// The client-name parameters in effect for one subnet.
#[derive(Debug, Clone, PartialEq)]
pub struct NamePolicy {
    /// `ddns-replace-client-name`.
    pub replace: ReplaceClientName,
    /// `ddns-generated-prefix`: generated names are `<prefix>-a-b-c-d`.
    pub generated_prefix: String,
    /// `ddns-qualifying-suffix`: appended to partial names.
    pub qualifying_suffix: String,
    /// `hostname-char-set` (none when set to "").
    pub sanitizer: Option<HostnameSanitizer>,
}

impl Default for NamePolicy {
    /// Kea 2.2's global defaults (`SimpleParser4::GLOBAL4_DEFAULTS`).
    fn default() -> Self {
        NamePolicy {
            replace: ReplaceClientName::Never,
            generated_prefix: "myhost".into(),
            qualifying_suffix: String::new(),
            sanitizer: Some(
                HostnameSanitizer::new(DEFAULT_CHAR_SET, "", "").expect("Kea's default hostname-char-set compiles"),
            ),
        }
    }
}

/// Kea's default `hostname-char-set`.
const DEFAULT_CHAR_SET: &str = "[^A-Za-z0-9.-]";

/// The keys one level sets (global, shared network or subnet).
pub(super) struct NameKeys<'a> {
    pub replace: Option<&'a str>,
    pub prefix: Option<&'a str>,
    pub suffix: Option<&'a str>,
    pub char_set: Option<&'a str>,
    pub char_replacement: Option<&'a str>,
}

/// `parent`'s policy with what `keys` set at `path` over it.
pub(super) fn inherit(parent: &NamePolicy, keys: NameKeys<'_>, path: &str) -> Result<NamePolicy, Invalid> {
    let mut p = parent.clone();
    if let Some(r) = keys.replace {
        p.replace = ReplaceClientName::parse(r).ok_or_else(|| {
            Invalid::new(
                format!("{path}.ddns-replace-client-name"),
                format!("'{r}' is not one of never, always, when-present, when-not-present"),
            )
        })?;
    }
    if let Some(s) = keys.prefix {
        p.generated_prefix = s.to_string();
    }
    if let Some(s) = keys.suffix {
        p.qualifying_suffix = s.to_string();
    }
    if keys.char_set.is_some() || keys.char_replacement.is_some() {
        let set = keys.char_set.map(str::to_string).or_else(|| parent.sanitizer.as_ref().map(|s| s.char_set.clone()));
        let replacement = keys
            .char_replacement
            .map(str::to_string)
            .or_else(|| parent.sanitizer.as_ref().map(|s| s.replacement.clone()))
            .unwrap_or_default();
        p.sanitizer = match set {
            Some(set) if !set.is_empty() => {
                Some(HostnameSanitizer::new(&set, &replacement, &format!("{path}.hostname-char-set"))?)
            }
            _ => None,
        };
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<'a>(replace: Option<&'a str>, set: Option<&'a str>, repl: Option<&'a str>) -> NameKeys<'a> {
        NameKeys { replace, prefix: None, suffix: None, char_set: set, char_replacement: repl }
    }

    #[test]
    fn kea_defaults_scrub_everything_but_letters_digits_dots_and_dashes() {
        let p = NamePolicy::default();
        assert_eq!(p.sanitizer.as_ref().unwrap().scrub("My_Host!.ex ample"), "MyHost.example");
        assert_eq!(p.replace, ReplaceClientName::Never);
        assert_eq!(p.generated_prefix, "myhost");
    }

    #[test]
    fn levels_inherit_and_override() {
        let g = inherit(&NamePolicy::default(), keys(Some("when-not-present"), None, Some("x")), "Dhcp4").unwrap();
        assert_eq!(g.sanitizer.as_ref().unwrap().scrub("a_b"), "axb", "the default set with the new replacement");
        let s = inherit(&g, keys(None, Some(""), None), "Dhcp4.subnet4[0]").unwrap();
        assert_eq!(s.replace, ReplaceClientName::WhenNotPresent);
        assert!(s.sanitizer.is_none(), "an empty set turns sanitising off");
    }

    #[test]
    fn bad_values_are_refused_by_path() {
        let e = inherit(&NamePolicy::default(), keys(Some("sometimes"), None, None), "Dhcp4").unwrap_err();
        assert_eq!(e.path, "Dhcp4.ddns-replace-client-name");
        let e = inherit(&NamePolicy::default(), keys(None, Some("[a-"), None), "Dhcp4.subnet4[2]").unwrap_err();
        assert_eq!(e.path, "Dhcp4.subnet4[2].hostname-char-set");
        assert!(e.message.contains("not a valid regular expression"), "{}", e.message);
    }
}
