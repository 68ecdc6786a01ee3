//! `libdhcp_flex_option.so` parameters as Kea 2.2's flex-option hook reads
//! them (`FlexOptionImpl::parseOptionConfig`): each entry names an option
//! of the reply by `code` or `name` and one action whose expression is
//! evaluated over the query when the reply is sent — `add` (only when the
//! reply lacks the option), `supersede` (replace it) or `remove` (drop it
//! when the boolean expression holds). A value that evaluates to the empty
//! string does nothing. With `csv-format` the value is comma-separated text
//! encoded by the option's definition; without it the value is the raw
//! option data.
//!
//! Kea's checks kept: the known keys and their JSON types, a code in
//! 1..=254 for `dhcp4`, a name that some definition knows, `code` and `name`
//! agreeing, exactly one action, expressions that parse. Nested
//! `sub-options` entries (Kea 2.2 also reads them) are refused by name:
//! xdhcp does not edit sub-options of a reply yet.

use serde_json::Value;

use super::client_classes::ExprContext;
use super::error::Invalid;
use super::option_def::{self, Key, OptionDef, OptionDefs};
use super::option_value;
use crate::classify::expr;

/// What one entry does to the reply.
#[derive(Debug, Clone, PartialEq)]
pub enum FlexAction {
    /// `add`: when the reply has no such option, the value (if not empty).
    Add(expr::Str),
    /// `supersede`: the value (if not empty) replaces the option.
    Supersede(expr::Str),
    /// `remove`: the option goes when the expression is true.
    Remove(expr::Bool),
}

/// One validated entry of the hook's `options`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlexOption {
    /// The option's code in `dhcp4`.
    pub code: u8,
    /// With `csv-format: true`, the definition the value is encoded by;
    /// `None` sends the value's bytes as they are.
    pub csv: Option<OptionDef>,
    /// The action and its expression.
    pub action: FlexAction,
    /// `client-class`: only queries in this class are touched.
    pub client_class: Option<String>,
    /// The expression as configured, for the log.
    pub text: String,
}

/// The hook's configuration: its entries in order, and the definitions
/// in force (a csv value of an option that carries sub-options needs
/// them to be encoded).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlexOptions {
    /// `options`, in configuration order (Kea applies them in code order;
    /// [`parse`] sorts them so).
    pub entries: Vec<FlexOption>,
    /// Standard and `option-def` definitions.
    pub defs: OptionDefs,
}

impl FlexOptions {
    /// Whether the hook is loaded with anything to do.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The option data `entry` sends for the evaluated `value`: the bytes
    /// as they are, or with `csv-format` the text encoded by the option's
    /// definition (an error when the text does not fit it, e.g. an address
    /// option given a name).
    pub fn encode(&self, entry: &FlexOption, value: &[u8]) -> Result<Vec<u8>, String> {
        match &entry.csv {
            None => Ok(value.to_vec()),
            Some(def) => {
                let text = String::from_utf8_lossy(value);
                option_value::pack_value(&option_value::from_text(def, &self.defs, &text, &mut Vec::new())?)
            }
        }
    }
}

/// The keys of an entry and their JSON types (Kea's `OPTION_PARAMETERS`).
const KEYS: [(&str, Kind); 10] = [
    ("code", Kind::Integer),
    ("name", Kind::String),
    ("space", Kind::String),
    ("csv-format", Kind::Boolean),
    ("add", Kind::String),
    ("supersede", Kind::String),
    ("remove", Kind::String),
    ("sub-options", Kind::List),
    ("client-class", Kind::String),
    ("comment", Kind::String),
];

#[derive(Clone, Copy)]
enum Kind {
    Integer,
    String,
    Boolean,
    List,
}

impl Kind {
    fn matches(self, v: &Value) -> bool {
        match self {
            Kind::Integer => v.is_i64() || v.is_u64(),
            Kind::String => v.is_string(),
            Kind::Boolean => v.is_boolean(),
            Kind::List => v.is_array(),
        }
    }
    /// Kea's words: "must be an integer", "must be a string", …
    fn article_name(self) -> &'static str {
        match self {
            Kind::Integer => "an integer",
            Kind::String => "a string",
            Kind::Boolean => "a boolean",
            Kind::List => "a list",
        }
    }
}

/// Reads the hook's `parameters` (at `path`), with the definitions `defs`.
pub fn parse(params: Option<&Value>, path: &str, defs: &OptionDefs) -> Result<FlexOptions, Invalid> {
    let options = params.and_then(|p| p.get("options"));
    let Some(options) = options else {
        return Err(Invalid::new(path, "'options' parameter is mandatory"));
    };
    let Some(list) = options.as_array() else {
        return Err(Invalid::new(format!("{path}.options"), "'options' parameter must be a list"));
    };
    if let Some(other) = params.and_then(Value::as_object).and_then(|m| m.keys().find(|k| *k != "options")) {
        return Err(Invalid::new(format!("{path}.{other}"), format!("unknown parameter '{other}'")));
    }
    let mut entries = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        entries.push(entry_of(entry, &format!("{path}.options[{i}]"), defs)?);
    }
    // Kea keeps the entries in a map by code: one code's entries in
    // configuration order, codes ascending.
    entries.sort_by_key(|e| e.code);
    Ok(FlexOptions { entries, defs: defs.clone() })
}

fn entry_of(entry: &Value, path: &str, defs: &OptionDefs) -> Result<FlexOption, Invalid> {
    let Some(map) = entry.as_object() else {
        return Err(Invalid::new(path, "option element is not a map"));
    };
    for (k, v) in map {
        let Some((_, kind)) = KEYS.iter().find(|(name, _)| name == k) else {
            return Err(Invalid::new(format!("{path}.{k}"), format!("unknown parameter '{k}'")));
        };
        if !kind.matches(v) {
            return Err(Invalid::new(format!("{path}.{k}"), format!("'{k}' must be {}: {v}", kind.article_name())));
        }
    }
    let str_of = |k: &str| map.get(k).and_then(Value::as_str);
    if map.get("code").is_none() && map.get("name").is_none() {
        return Err(Invalid::new(path, format!("'code' or 'name' must be specified: {entry}")));
    }
    let space = str_of("space").unwrap_or(option_def::DHCP4);
    if !option_def::valid_space_name(space) {
        return Err(Invalid::new(format!("{path}.space"), format!("'{space}' is not a valid space name")));
    }
    let mut code = None;
    if let Some(v) = map.get("code").and_then(Value::as_i64) {
        if !(0..=255).contains(&v) {
            return Err(Invalid::new(format!("{path}.code"), format!("invalid 'code' value {v} not in [0..255]")));
        }
        if space == option_def::DHCP4 && v == 0 {
            return Err(Invalid::new(format!("{path}.code"), "invalid 'code' value 0: reserved for PAD"));
        }
        if space == option_def::DHCP4 && v == 255 {
            return Err(Invalid::new(format!("{path}.code"), "invalid 'code' value 255: reserved for END"));
        }
        code = Some(v as u8);
    }
    let mut def = None;
    if let Some(name) = str_of("name") {
        if name.is_empty() {
            return Err(Invalid::new(format!("{path}.name"), "'name' must not be empty"));
        }
        let Some(d) = defs.find(space, Key::Name(name)) else {
            return Err(Invalid::new(format!("{path}.name"), format!("no known '{name}' option in '{space}' space")));
        };
        if let Some(c) = code.filter(|c| *c != d.code) {
            return Err(Invalid::new(
                format!("{path}.code"),
                format!("option '{name}' is defined as code: {}, not the specified code: {c}", d.code),
            ));
        }
        code = Some(d.code);
        def = Some(d.clone());
    }
    let code = code.expect("code or name was required above");
    if map.contains_key("sub-options") {
        if let Some(action) = ["add", "supersede", "remove"].into_iter().find(|a| map.contains_key(*a)) {
            return Err(Invalid::new(path, format!("'sub-options' and '{action}' are incompatible in the same entry")));
        }
        return Err(Invalid::new(
            format!("{path}.sub-options"),
            "editing sub-options of a reply (flex-option 'sub-options') is not supported by xdhcp",
        ));
    }
    let csv = map.get("csv-format").and_then(Value::as_bool).unwrap_or(false);
    // Kea: without csv-format the value is raw data (no definition);
    // with it a definition is required.
    let csv = if csv {
        match def.or_else(|| defs.find(space, Key::Code(code)).cloned()) {
            Some(d) => Some(d),
            None => {
                return Err(Invalid::new(
                    format!("{path}.csv-format"),
                    format!("no known option with code '{code}' in '{space}' space"),
                ));
            }
        }
    } else {
        None
    };
    let cx = ExprContext::any_class(defs);
    let mut action = None;
    let mut text = String::new();
    for name in ["add", "supersede", "remove"] {
        let Some(t) = str_of(name) else { continue };
        if t.is_empty() {
            return Err(Invalid::new(format!("{path}.{name}"), format!("'{name}' must not be empty")));
        }
        if action.is_some() {
            return Err(Invalid::new(path, format!("multiple actions: {entry}")));
        }
        let bad = |e: expr::ParseError| {
            Invalid::new(format!("{path}.{name}"), format!("can't parse {name} expression [{t}] error: {e}"))
        };
        action = Some(match name {
            "add" => FlexAction::Add(expr::parse_string(t, &cx).map_err(bad)?),
            "supersede" => FlexAction::Supersede(expr::parse_string(t, &cx).map_err(bad)?),
            _ => FlexAction::Remove(expr::parse_bool(t, &cx).map_err(bad)?.expr),
        });
        text = t.to_owned();
    }
    let Some(action) = action else {
        return Err(Invalid::new(path, format!("no action: {entry}")));
    };
    Ok(FlexOption { code, csv, action, client_class: str_of("client-class").map(str::to_owned), text })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse_one(entry: Value) -> Result<FlexOption, Invalid> {
        let defs = OptionDefs::new();
        parse(Some(&json!({ "options": [entry] })), "hooks-libraries[0].parameters", &defs).map(|f| f.entries[0].clone())
    }

    #[test]
    fn an_add_by_code_with_csv_takes_the_standard_definition() {
        let e = parse_one(json!({"code": 67, "add": "ifelse(option[host-name].exists, 'a', 'b')", "csv-format": true})).unwrap();
        assert_eq!(e.code, 67);
        assert_eq!(e.csv.as_ref().map(|d| d.name.as_str()), Some("boot-file-name"));
        assert!(matches!(e.action, FlexAction::Add(_)));
    }

    #[test]
    fn a_name_gives_the_code_and_must_agree_with_one() {
        let e = parse_one(json!({"name": "host-name", "remove": "member('KNOWN')"})).unwrap();
        assert_eq!((e.code, e.csv.is_none()), (12, true));
        let err = parse_one(json!({"name": "host-name", "code": 13, "remove": "member('KNOWN')"})).unwrap_err();
        assert_eq!(err.message, "option 'host-name' is defined as code: 12, not the specified code: 13");
    }

    #[test]
    fn kea_refusals_name_the_entry() {
        let cases = [
            (json!({"add": "'x'"}), "'code' or 'name' must be specified"),
            (json!({"code": 0, "add": "'x'"}), "invalid 'code' value 0: reserved for PAD"),
            (json!({"code": 300, "add": "'x'"}), "invalid 'code' value 300 not in [0..255]"),
            (json!({"code": 67}), "no action"),
            (json!({"code": 67, "add": "'x'", "remove": "true"}), "multiple actions"),
            (json!({"code": 67, "add": ""}), "'add' must not be empty"),
            (json!({"code": 67, "add": "option[", "csv-format": true}), "can't parse add expression [option[] error: column"),
            (json!({"code": 67, "supersede": 5}), "'supersede' must be a string: 5"),
            (json!({"code": 67, "replace": "'x'"}), "unknown parameter 'replace'"),
            (json!({"code": 222, "add": "'x'", "csv-format": true}), "no known option with code '222' in 'dhcp4' space"),
            (json!({"name": "no-such", "add": "'x'"}), "no known 'no-such' option in 'dhcp4' space"),
            (json!({"code": 43, "sub-options": [], "add": "'x'"}), "'sub-options' and 'add' are incompatible"),
        ];
        for (entry, want) in cases {
            let err = parse_one(entry.clone()).unwrap_err();
            assert!(err.message.starts_with(want), "{entry}: {err:?}");
            assert!(err.path.starts_with("hooks-libraries[0].parameters.options[0]"), "{entry}: {err:?}");
        }
        let defs = OptionDefs::new();
        assert_eq!(parse(Some(&json!({})), "p", &defs).unwrap_err().message, "'options' parameter is mandatory");
        assert_eq!(parse(None, "p", &defs).unwrap_err().message, "'options' parameter is mandatory");
    }

    #[test]
    fn entries_are_applied_in_code_order() {
        let defs = OptionDefs::new();
        let p = json!({"options": [{"code": 67, "add": "'f'"}, {"code": 5, "remove": "member('ALL')"}, {"code": 67, "supersede": "'g'"}]});
        let f = parse(Some(&p), "p", &defs).unwrap();
        let order: Vec<(u8, &str)> = f.entries.iter().map(|e| (e.code, e.text.as_str())).collect();
        assert_eq!(order, [(5, "member('ALL')"), (67, "'f'"), (67, "'g'")]);
    }
}
