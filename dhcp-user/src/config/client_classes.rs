//! `Dhcp4.client-classes` as Kea 2.2 reads it (`ClientClassDefParser`):
//! each class's `test` parsed once here into the expression tree the
//! packet path evaluates, its options encoded with the class's own
//! `option-def`s, its boot fields and lifetimes checked.
//!
//! Kea's rules kept: a name is required and unique; a `member()` may only
//! name a built-in class or one defined earlier (so tests cannot loop);
//! the built-in classes (`ALL`, `KNOWN`, `UNKNOWN`, `BOOTP`) may be
//! configured but without a test or `only-if-required`, nor may `DROP` be
//! `only-if-required`; a class `option-def` is only for option 43 or codes
//! 224–254 of `dhcp4` (the options Kea unpacks late, per class).

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::error::Invalid;
use super::option_def::{self, DataType, Key, OptionDefs};
use super::options::OptionSet;
use super::option_space;
use super::wire;
use crate::classify::{self, expr};

/// One validated client class.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientClass {
    /// `name`.
    pub name: String,
    /// `test`, parsed; `None` for a class assigned only by name
    /// (reservations, hooks, or a built-in given options).
    pub test: Option<Arc<expr::Bool>>,
    /// `only-if-required`: evaluated only where a network, subnet or pool
    /// requires it, after the address is chosen.
    pub required: bool,
    /// Whether the test depends on `KNOWN`/`UNKNOWN` (evaluated after the
    /// host lookup).
    pub depends_on_known: bool,
    /// `option-data`, encoded.
    pub options: OptionSet,
    /// `next-server`, when set and not 0.0.0.0.
    pub next_server: Option<Ipv4Addr>,
    /// `server-hostname`, when not empty.
    pub server_hostname: Option<String>,
    /// `boot-file-name`, when not empty.
    pub boot_file_name: Option<String>,
    /// `valid-lifetime` with `min-`/`max-`: (min, default, max).
    pub valid_lifetime: Option<(u32, u32, u32)>,
}

impl ClientClass {
    /// Whether membership changes a reply: options, boot fields or a
    /// lifetime (restricting subnets and pools aside).
    pub fn acts(&self) -> bool {
        !self.options.is_empty()
            || self.next_server.is_some()
            || self.server_hostname.is_some()
            || self.boot_file_name.is_some()
            || self.valid_lifetime.is_some()
    }
}

/// What an expression may refer to: options by name through `defs`, and
/// in a class `test` only the classes defined `earlier` (Kea's check that
/// keeps tests from looping); elsewhere (the flex-option hook) any class.
pub(super) struct ExprContext<'a> {
    defs: &'a OptionDefs,
    earlier: Option<&'a [ClientClass]>,
}

impl<'a> ExprContext<'a> {
    /// For expressions outside a class (hook parameters): `member()` of any
    /// name is accepted, as Kea's default evaluation context accepts it.
    pub(super) fn any_class(defs: &'a OptionDefs) -> Self {
        ExprContext { defs, earlier: None }
    }
}

impl expr::Context for ExprContext<'_> {
    fn option_code(&self, name: &str) -> Option<u8> {
        self.defs.find(option_def::DHCP4, Key::Name(name)).map(|d| d.code)
    }
    fn is_string_option(&self, code: u8) -> bool {
        self.defs.find_for_unpack(option_def::DHCP4, code).is_some_and(|d| d.kind == DataType::String && !d.array)
    }
    fn class(&self, name: &str) -> Option<bool> {
        if name == classify::KNOWN || name == classify::UNKNOWN {
            return Some(true);
        }
        if classify::is_builtin(name) {
            return Some(false);
        }
        match self.earlier {
            None => Some(false),
            Some(earlier) => earlier.iter().find(|c| c.name == name).map(|c| c.depends_on_known),
        }
    }
}

/// The classes of `Dhcp4.client-classes` (at `path`), in order.
pub fn parse_list(
    list: &[wire::ClientClass],
    path: &str,
    defs: &OptionDefs,
    w: &mut Vec<(String, String)>,
) -> Result<Vec<ClientClass>, Invalid> {
    let mut out: Vec<ClientClass> = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let cp = format!("{path}[{i}]");
        let class = parse(c, &cp, defs, &out, w)?;
        if out.iter().any(|o| o.name == class.name) {
            return Err(Invalid::new(
                format!("{cp}.name"),
                format!("Can't add class: Client Class: {} has already been defined", class.name),
            ));
        }
        out.push(class);
    }
    Ok(out)
}

fn parse(
    c: &wire::ClientClass,
    path: &str,
    defs: &OptionDefs,
    earlier: &[ClientClass],
    w: &mut Vec<(String, String)>,
) -> Result<ClientClass, Invalid> {
    let at = |k: &str| format!("{path}.{k}");
    let name = match c.name.as_deref() {
        None | Some("") => return Err(Invalid::new(path, "not empty parameter 'name' is required")),
        Some(n) => n.to_owned(),
    };
    if c.user_context.is_some() {
        w.push((at("user-context"), "ignored".into()));
    }
    let mut local = Vec::new();
    for (j, d) in c.option_def.iter().flatten().enumerate() {
        let dp = format!("{}[{j}]", at("option-def"));
        let def = option_def::parse(d, &dp)?;
        if !(def.space == option_def::DHCP4 && (def.code == 43 || (224..=254).contains(&def.code))) {
            return Err(Invalid::new(
                &dp,
                format!("Not allowed option definition for code '{}' in space '{}'", def.code, def.space),
            ));
        }
        local.push(def);
    }
    let defs = if local.is_empty() { defs.clone() } else { defs.with_local(local) };
    let (test, depends_on_known) = match c.test.as_deref() {
        None => (None, false),
        Some(text) => {
            let parsed = expr::parse_bool(text, &ExprContext { defs: &defs, earlier: Some(earlier) })
                .map_err(|e| Invalid::new(at("test"), format!("expression {text:?}: {e}")))?;
            (Some(Arc::new(parsed.expr)), parsed.depends_on_known)
        }
    };
    let required = c.only_if_required.unwrap_or(false);
    if matches!(name.as_str(), classify::ALL | classify::KNOWN | classify::UNKNOWN | classify::BOOTP) {
        if required {
            return Err(Invalid::new(at("only-if-required"), format!("built-in class '{name}' only-if-required flag must be false")));
        }
        if test.is_some() {
            return Err(Invalid::new(at("test"), format!("built-in class '{name}' test expression must be empty")));
        }
    }
    if name == classify::DROP && required {
        return Err(Invalid::new(at("only-if-required"), "special class 'DROP' only-if-required flag must be false"));
    }
    let options = option_space::scope_options(&defs, c.option_data.as_deref().unwrap_or_default(), &at("option-data"), w)?;
    let next_server = match c.next_server.as_deref() {
        None | Some("") => None,
        Some(s) => {
            let a: Ipv4Addr = s
                .parse()
                .map_err(|_| Invalid::new(at("next-server"), format!("Invalid next-server value specified: '{s}'")))?;
            if a.is_broadcast() {
                return Err(Invalid::new(at("next-server"), format!("Invalid next-server value: '{s}', must not be a broadcast")));
            }
            (!a.is_unspecified()).then_some(a)
        }
    };
    let server_hostname = c.server_hostname.clone().filter(|s| !s.is_empty());
    if let Some(s) = &server_hostname
        && s.len() >= 64
    {
        return Err(Invalid::new(at("server-hostname"), format!("server-hostname must be at most 63 bytes long, it is {}", s.len())));
    }
    let boot_file_name = c.boot_file_name.clone().filter(|s| !s.is_empty());
    if let Some(s) = &boot_file_name
        && s.len() > 128
    {
        return Err(Invalid::new(at("boot-file-name"), format!("boot-file-name must be at most 127 bytes long, it is {}", s.len())));
    }
    let valid_lifetime = triplet(c.valid_lifetime, c.min_valid_lifetime, c.max_valid_lifetime, path)?;
    Ok(ClientClass {
        name,
        test,
        required,
        depends_on_known,
        options,
        next_server,
        server_hostname,
        boot_file_name,
        valid_lifetime,
    })
}

/// Kea's `parseIntTriplet` for `valid-lifetime`: the default, bounded by
/// min and max (each defaulting to the others).
fn triplet(value: Option<u32>, min: Option<u32>, max: Option<u32>, path: &str) -> Result<Option<(u32, u32, u32)>, Invalid> {
    let Some(v) = value.or(min).or(max) else { return Ok(None) };
    let (lo, hi) = (min.unwrap_or(v), max.unwrap_or(v));
    if lo > v {
        return Err(Invalid::new(
            format!("{path}.min-valid-lifetime"),
            format!("the value of min-valid-lifetime ({lo}) is not less than (default) valid-lifetime ({v})"),
        ));
    }
    if v > hi {
        return Err(Invalid::new(
            format!("{path}.max-valid-lifetime"),
            format!("the value of (default) valid-lifetime ({v}) is not less than max-valid-lifetime ({hi})"),
        ));
    }
    Ok(Some((lo, v, hi)))
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, parse};

    fn cfg(classes: &str, subnet_extra: &str) -> Result<crate::config::Config, ConfigError> {
        parse(
            &format!(
                r#"{{ "Dhcp4": {{ "client-classes": [ {classes} ],
                  "subnet4": [ {{ "id": 1, "subnet": "192.0.2.0/24" {subnet_extra},
                                 "pools": [ {{ "pool": "192.0.2.10-192.0.2.20", "client-class": "pxe",
                                              "require-client-classes": [ "late" ] }} ],
                                 "reservations": [ {{ "hw-address": "02:00:00:00:00:01", "client-classes": [ "pxe" ] }} ] }} ] }} }}"#
            ),
            "kea.json",
        )
    }

    #[test]
    fn reads_kea_classes() {
        let c = cfg(
            r#"{ "name": "pxe", "test": "substring(option[vendor-class-identifier].hex,0,9) == 'PXEClient'",
                 "boot-file-name": "pxelinux.0", "next-server": "192.0.2.5",
                 "option-data": [ { "name": "domain-name-servers", "data": "192.0.2.53" } ] },
               { "name": "late", "test": "member('pxe') and member('KNOWN')", "only-if-required": true,
                 "valid-lifetime": 600, "max-valid-lifetime": 900 },
               { "name": "DROP", "test": "option[12].text == 'evil'" }"#,
            r#", "client-class": "pxe", "require-client-classes": [ "late" ]"#,
        )
        .unwrap();
        let classes = c.client_classes();
        assert_eq!(classes.len(), 3);
        assert!(classes[0].acts() && !classes[0].depends_on_known);
        assert_eq!(classes[0].boot_file_name.as_deref(), Some("pxelinux.0"));
        assert_eq!(classes[0].options.get(6).unwrap().data(), [192, 0, 2, 53]);
        assert!(classes[1].required && classes[1].depends_on_known);
        assert_eq!(classes[1].valid_lifetime, Some((600, 600, 900)));
        let s = &c.subnets()[0];
        assert_eq!(s.classes().client_class.as_deref(), Some("pxe"));
        assert_eq!(s.classes().required, ["late"]);
        assert_eq!(s.pools()[0].client_class(), Some("pxe"));
        assert_eq!(s.reservations()[0].client_classes(), ["pxe"]);
    }

    #[test]
    fn refuses_what_kea_refuses_with_path_and_line() {
        let err = |classes: &str| cfg(classes, "").unwrap_err().to_string();
        let e = err(r#"{ "name": "a", "test": "member('b')" }, { "name": "b" }"#);
        assert!(e.contains("Dhcp4.client-classes[0].test") && e.contains("Not defined client class 'b'") && e.contains("column 8"), "{e}");
        assert!(e.starts_with("kea.json:1:"), "{e}");
        let e = err(r#"{ "name": "a", "test": "option[60].hex == " }"#);
        assert!(e.contains("client-classes[0].test") && e.contains("column 19"), "{e}");
        assert!(err(r#"{ "test": "'a' == 'a'" }"#).contains("not empty parameter 'name' is required"));
        assert!(err(r#"{ "name": "a" }, { "name": "a" }"#).contains("has already been defined"));
        assert!(err(r#"{ "name": "KNOWN", "test": "'a' == 'a'" }"#).contains("test expression must be empty"));
        assert!(err(r#"{ "name": "DROP", "only-if-required": true }"#).contains("only-if-required flag must be false"));
        assert!(err(r#"{ "name": "a", "option-def": [ { "name": "x", "code": 200, "type": "uint8" } ] }"#).contains("Not allowed option definition"));
        assert!(err(r#"{ "name": "a", "next-server": "255.255.255.255" }"#).contains("must not be a broadcast"));
        assert!(err(r#"{ "name": "a", "valid-lifetime": 10, "min-valid-lifetime": 20 }"#).contains("min-valid-lifetime"));
        let e = err(r#"{ "name": "a", "colour": "red" }"#);
        assert!(e.contains("client-classes[0]") && e.contains("colour"), "{e}");
        // A class option-def for 43 is Kea's per-class vendor option format.
        cfg(
            r#"{ "name": "a", "option-def": [ { "name": "vendor-encapsulated-options", "code": 43, "type": "uint32" } ],
                 "option-data": [ { "name": "vendor-encapsulated-options", "data": "7" } ] }"#,
            "",
        )
        .unwrap();
    }
}
