//! One scope's `option-data` list → its [`OptionSet`], as Kea 2.2's
//! `OptionDataParser` and `CfgOption::encapsulate` build it.
//!
//! Each entry names its option by `code` (or, without a code, by `name`) in
//! its `space` (default `dhcp4`); the definition is looked up in Kea's order
//! ([`OptionDefs::find`]). With a definition, `data` is comma-separated
//! values unless `csv-format` is false; without one, `data` is hex (or a
//! `'quoted string'`), and `csv-format: true` or a name without a code is an
//! error. A name given with a code must be the definition's.
//!
//! Options of a sub-option space reach the client only inside an option
//! that encapsulates that space, set in the same scope: the scope is read
//! whole, then every option whose definition encapsulates a space gets that
//! space's options of the scope appended (recursively through custom
//! spaces), after any sub-options its own data carried, in code order.
//! `vendor-<enterprise>` spaces are the options of 125 (see
//! [`super::options`]).
//!
//! Kea accepts, and xdhcp accepts with a warning: the same option twice in
//! one list (Kea sends the last of a top-level or vendor option, always-send
//! if any is, and carries the first as a sub-option), options the server sets itself (the
//! configured value is sent only where the server sets none), sub-options
//! that no option of the scope carries (never sent).

use std::collections::BTreeSet;

use super::error::Invalid;
use super::option_def::{self, DHCP4, Key, OptionDefs};
use super::option_value::{self, Value, decode_formatted_hex, pack_tlvs, quoted_literal};
use super::options::{DhcpOption, OptionSet, Vivso};
use super::wire;

type Warnings = Vec<(String, String)>;

/// One resolved entry.
struct Entry {
    path: String,
    space: String,
    code: u8,
    value: Value,
    always_send: bool,
    /// The space whose options it carries, when its definition says so.
    encapsulate: Option<String>,
}

/// Builds the options of one scope from its `option-data` list at `path`.
pub fn scope_options(
    defs: &OptionDefs,
    list: &[wire::OptionData],
    path: &str,
    w: &mut Warnings,
) -> Result<OptionSet, Invalid> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, o) in list.iter().enumerate() {
        let op = format!("{path}[{i}]");
        let e = entry(defs, o, &op, w)?;
        if let Some(first) = entries.iter().find(|f| f.space == e.space && f.code == e.code) {
            let which = if e.space == DHCP4 || option_def::vendor_id(&e.space).is_some() {
                "Kea sends this later one (always-send if either is)"
            } else {
                "Kea carries the first as a sub-option and ignores this one"
            };
            w.push((
                op,
                format!("option {}.{} is already set in this list at {}; {which}", e.space, e.code, first.path),
            ));
        }
        entries.push(e);
    }
    let mut set = OptionSet::new();
    for e in &entries {
        // Kea looks a top-level or vendor option up by code and gets the
        // last one set, and sends it if any of them is always-send.
        let always_send = entries.iter().any(|f| f.space == e.space && f.code == e.code && f.always_send);
        let payload = || -> Result<Vec<u8>, String> {
            let mut subs = e.value.subs.clone();
            encapsulate(&entries, e, &mut subs, &mut Vec::new())?;
            let mut out = e.value.data.clone();
            pack_tlvs(&subs, &mut out)?;
            Ok(out)
        };
        let bad = |m: String| Invalid::new(&e.path, m);
        if e.space == DHCP4 && e.code == 125 {
            let enterprise = e.value.data.get(..4).and_then(|b| b.try_into().ok()).map_or(0, u32::from_be_bytes);
            set.set_vivso(Vivso { enterprise, subs: e.value.subs.clone(), always_send });
        } else if e.space == DHCP4 {
            set.insert(DhcpOption::new(e.code, payload().map_err(bad)?, always_send).map_err(bad)?);
        } else if let Some(id) = option_def::vendor_id(&e.space) {
            let data = option_value::pack_value(&e.value).map_err(bad)?;
            check_len(e, &data)?;
            set.insert_vendor(id, DhcpOption::sub(e.code, data, always_send));
        } else if set.space_options(&e.space).is_none_or(|m| !m.contains_key(&e.code)) {
            // Kept as set (the first of a code, as encapsulation takes it):
            // what it carries is assembled only where a dhcp4 option
            // reaches it.
            let data = option_value::pack_value(&e.value).map_err(bad)?;
            check_len(e, &data)?;
            set.insert_in_space(&e.space, DhcpOption::sub(e.code, data, e.always_send));
        }
    }
    warn_unsent(&entries, w);
    Ok(set)
}

fn check_len(e: &Entry, data: &[u8]) -> Result<(), Invalid> {
    if data.len() > 255 {
        return Err(Invalid::new(
            &e.path,
            format!("option {}.{} would be {} bytes long; at most 255 fit", e.space, e.code, data.len()),
        ));
    }
    Ok(())
}

/// Appends to `subs` the options of the scope in the space `e` carries
/// (unless one with that code is there already), each with its own
/// sub-options, then sorts them by code. `stack` catches spaces that
/// carry each other.
fn encapsulate(
    entries: &[Entry],
    e: &Entry,
    subs: &mut Vec<(u8, Vec<u8>)>,
    stack: &mut Vec<String>,
) -> Result<(), String> {
    let Some(space) = &e.encapsulate else { return Ok(()) };
    if stack.contains(space) {
        stack.push(space.clone());
        return Err(format!("option spaces encapsulate each other in a loop: {}", stack.join(" → ")));
    }
    stack.push(space.clone());
    for s in entries.iter().filter(|s| &s.space == space) {
        if subs.iter().any(|(c, _)| *c == s.code) {
            continue;
        }
        let mut inner = s.value.subs.clone();
        // Kea does not look into dhcp4 again from below (its guard
        // against endless recursion); those options are complete already.
        if space != DHCP4 {
            encapsulate(entries, s, &mut inner, stack)?;
        }
        let mut payload = s.value.data.clone();
        pack_tlvs(&inner, &mut payload)?;
        subs.push((s.code, payload));
    }
    stack.pop();
    subs.sort_by_key(|(c, _)| *c);
    Ok(())
}

/// Warns about sub-option spaces set in this scope that no option of the
/// scope carries, and vendor options that are never sent unasked.
fn warn_unsent(entries: &[Entry], w: &mut Warnings) {
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> =
        entries.iter().filter(|e| e.space == DHCP4).filter_map(|e| e.encapsulate.as_deref()).collect();
    while let Some(space) = todo.pop() {
        if reached.insert(space) {
            todo.extend(entries.iter().filter(|e| e.space == space).filter_map(|e| e.encapsulate.as_deref()));
        }
    }
    let mut warned: BTreeSet<&str> = BTreeSet::new();
    for e in entries {
        if e.space == DHCP4 || reached.contains(e.space.as_str()) {
            continue;
        }
        if option_def::vendor_id(&e.space).is_some() {
            if !e.always_send {
                w.push((
                    e.path.clone(),
                    format!(
                        "vendor option {}.{} has no \"always-send\": Kea sends it only to clients asking for it inside their own vivso option (DOCSIS ORO), which xdhcp does not answer yet",
                        e.space, e.code
                    ),
                ));
            }
        } else if warned.insert(e.space.as_str()) {
            w.push((
                e.path.clone(),
                format!(
                    "no option in this option-data list carries space {:?} (Kea fills an option's sub-options from the same list only), so its options here are never sent",
                    e.space
                ),
            ));
        }
    }
}

/// Why configuring `code` mostly has no effect: the server sets it.
fn server_sets(code: u8) -> Option<&'static str> {
    Some(match code {
        53 => "every reply carries its own message type, so this option is never sent",
        51 | 58 | 59 => {
            "replies with a lease carry the server's own lease time and timers; this value is sent only in replies without one (DHCPINFORM) to clients asking for it, as in Kea"
        }
        61 => {
            "the server echoes the client's identifier; this value is sent only to clients that sent none and ask for it, as in Kea"
        }
        82 => {
            "the server echoes the relay agent's option; this value is sent only when the request had none and the client asks for it, as in Kea"
        }
        _ => return None,
    })
}

/// Resolves one `option-data` entry at `path` (Kea's `createOption`).
fn entry(defs: &OptionDefs, o: &wire::OptionData, path: &str, w: &mut Warnings) -> Result<Entry, Invalid> {
    let at = |k: &str| format!("{path}.{k}");
    if o.user_context.is_some() {
        w.push((at("user-context"), "ignored".into()));
    }
    let space = o.space.as_deref().unwrap_or(DHCP4);
    if !option_def::valid_space_name(space) {
        return Err(Invalid::new(at("space"), format!("invalid option space name '{space}'")));
    }
    if space == "dhcp6" {
        return Err(Invalid::new(at("space"), "'dhcp6' option space name is reserved for DHCPv6 server"));
    }
    let code = match o.code {
        Some(c) => Some(u8::try_from(c).map_err(|_| {
            Invalid::new(at("code"), format!("invalid option code '{c}', it must not be greater than '255'"))
        })?),
        None => None,
    };
    if let Some(name) = &o.name
        && name.contains(' ')
    {
        return Err(Invalid::new(at("name"), format!("invalid option name '{name}', space character is not allowed")));
    }
    let key = match (code, &o.name) {
        (Some(c), _) => Key::Code(c),
        (None, Some(n)) => Key::Name(n),
        (None, None) => return Err(Invalid::new(path, "option data configuration requires one of 'code' or 'name'")),
    };
    let def = defs.find(space, key);
    let data = o.data.as_deref().unwrap_or("");
    let csv = o.csv_format;
    let mut notes = Vec::new();
    let (code, value, encapsulate) = match def {
        None => {
            // Kea defaults csv-format to true, and CSV needs a definition.
            let what = match (&o.name, code) {
                (Some(n), Some(c)) => format!("'{space}.{n}' (code {c})"),
                (Some(n), None) => format!("'{space}.{n}'"),
                (None, c) => format!("of code {} in space '{space}'", c.unwrap_or_default()),
            };
            let Some(code) = code.filter(|_| csv == Some(false)) else {
                let key = if csv == Some(true) {
                    "csv-format"
                } else if code.is_none() {
                    "name"
                } else {
                    "code"
                };
                return Err(Invalid::new(
                    at(key),
                    format!(
                        "no definition for the option {what}: give hex \"data\" with \"code\" and \"csv-format\": false, or an \"option-def\""
                    ),
                ));
            };
            let bytes = binary(data).ok_or_else(|| hex_error(&at("data"), data))?;
            (code, Value { data: bytes, subs: Vec::new() }, None)
        }
        Some(def) => {
            if let Some(n) = &o.name
                && *n != def.name
            {
                return Err(Invalid::new(
                    at("name"),
                    format!(
                        "specified option name '{n}' does not match the option definition: '{space}.{}' (code {})",
                        def.name, def.code
                    ),
                ));
            }
            let value = if csv == Some(false) {
                let bytes = binary(data).ok_or_else(|| hex_error(&at("data"), data))?;
                option_value::from_buffer(def, defs, &bytes)
            } else {
                option_value::from_text(def, defs, data, &mut notes)
            }
            .map_err(|m| {
                Invalid::new(
                    at("data"),
                    format!("option data does not match the definition of {space}.{}: {m}", def.name),
                )
            })?;
            (def.code, value, def.carries_suboptions().then(|| def.encapsulate.clone()).flatten())
        }
    };
    if space == DHCP4 && (code == 0 || code == 255) {
        let what = if code == 0 { "PAD" } else { "END" };
        return Err(Invalid::new(path, format!("invalid option code '{code}': reserved for {what}")));
    }
    for n in notes {
        w.push((at("data"), n));
    }
    if space == DHCP4
        && let Some(why) = server_sets(code)
    {
        w.push((path.to_owned(), format!("option {code}: {why}")));
    }
    Ok(Entry {
        path: path.to_owned(),
        space: space.to_owned(),
        code,
        value,
        always_send: o.always_send.unwrap_or(false),
        encapsulate,
    })
}

/// Hex data as Kea reads it: a `'quoted string'`, else formatted hex.
fn binary(data: &str) -> Option<Vec<u8>> {
    quoted_literal(data).or_else(|| decode_formatted_hex(data))
}

fn hex_error(path: &str, data: &str) -> Invalid {
    Invalid::new(path, format!("option data is not a valid string of hexadecimal digits: {data:?}"))
}
