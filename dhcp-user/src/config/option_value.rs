//! Option values: an `option-data` entry's `data` → the bytes Kea sends.
//!
//! Kea builds every configured option in two steps, and so does this
//! module: the text is turned into a buffer field by field ([`from_text`],
//! Kea's `OptionDefinition::optionFactory` over comma-separated values), and
//! the buffer is then read back as the option class Kea picks for the
//! definition ([`from_buffer`]). The second step is also all that happens
//! to hex data (`csv-format: false`), and it is where Kea refuses malformed
//! values: an integer array with no values, a truncated record, an address
//! list whose length is not a multiple of 4, a string of NULs. Bytes past
//! the last field are kept only as sub-options, when the definition
//! encapsulates a space, and otherwise dropped, as Kea drops them.
//!
//! Text rules (Kea's): `data` is split on commas (`\,` keeps a comma, empty
//! values are dropped), each value trimmed of blanks, tabs and newlines;
//! integers are decimal or hex (`0x1f`, even bare `1f`), range-checked;
//! booleans `true`/`false` (any case) or `1`/`0`; `binary` is plain hex;
//! `fqdn` is written uncompressed. A single-valued option given several
//! values keeps the first, and a record given more values than fields
//! (without `array`) ignores the rest: both are reported as notes.
//!
//! Deliberate difference: an IPv6 address where an IPv4 one is expected is
//! refused (Kea writes its 16 bytes, which an address list then reads as
//! four IPv4 addresses).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::option_def::{DHCP4, DataType, OptionDef, OptionDefs};
use DataType::{
    Binary, Boolean, Empty, Fqdn, Int8, Int16, Int32, Ipv4Address, Ipv6Address, Ipv6Prefix, Psid, Record, Tuple, Uint8,
    Uint16, Uint32,
};

/// An option's content as Kea holds it: its own data fields and the
/// sub-options that came with the data (parsed out of hex, in code order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Value {
    /// The data fields, encoded.
    pub data: Vec<u8>,
    /// Sub-options carried in the data: (code, payload), sorted by code.
    pub subs: Vec<(u8, Vec<u8>)>,
}

impl Value {
    fn plain(data: &[u8]) -> Self {
        Value { data: data.to_vec(), subs: Vec::new() }
    }
}

/// Encodes Kea CSV `text` for `def`; `notes` receives what Kea would
/// silently ignore.
pub fn from_text(def: &OptionDef, defs: &OptionDefs, text: &str, notes: &mut Vec<String>) -> Result<Value, String> {
    let values: Vec<String> = kea_tokens(text).iter().map(|t| kea_trim(t).to_owned()).collect();
    let mut buf = Vec::new();
    if def.kind == Record {
        let fields = &def.fields;
        if values.len() < fields.len() {
            return Err(format!(
                "option {} is a record of {} fields ({}) but {} comma-separated values are given",
                def.name,
                fields.len(),
                fields.iter().map(|f| f.kea_name()).collect::<Vec<_>>().join(", "),
                values.len()
            ));
        }
        let last = fields[fields.len() - 1];
        for (i, v) in values.iter().enumerate() {
            match fields.get(i) {
                Some(t) => write_value(*t, v, &mut buf)?,
                None if def.array => write_value(last, v, &mut buf)?,
                None => {}
            }
        }
        if !def.array && values.len() > fields.len() {
            notes.push(format!(
                "option {} takes {} values; the {} after them are ignored, as Kea ignores them",
                def.name,
                fields.len(),
                values.len() - fields.len()
            ));
        }
    } else if def.array {
        for v in &values {
            write_value(def.kind, v, &mut buf)?;
        }
    } else {
        match values.as_slice() {
            [] if def.kind == Empty => {}
            [] => return Err(format!("option {} needs a value", def.name)),
            [first, rest @ ..] => {
                if def.kind == Empty {
                    return Err(format!(
                        "option {} has no data fields (type empty), only sub-options: remove \"data\" or give it \"\"",
                        def.name
                    ));
                }
                write_value(def.kind, first, &mut buf)?;
                if !rest.is_empty() {
                    notes.push(format!(
                        "option {} takes one value; Kea sends the first ({first:?}) and ignores the other {} (write \\, for a comma inside a value)",
                        def.name,
                        rest.len()
                    ));
                }
            }
        }
    }
    from_buffer(def, defs, &buf)
}

/// Reads `buf` as the option Kea builds for `def` (its factory), checking
/// what Kea checks and keeping what Kea keeps.
pub fn from_buffer(def: &OptionDef, defs: &OptionDefs, buf: &[u8]) -> Result<Value, String> {
    let name = &def.name;
    if def.space == DHCP4 {
        match def.code {
            124 => return vendor_class(buf).map(|()| Value::plain(buf)),
            125 => return vendor_options(buf, defs),
            _ => {}
        }
    }
    let encap = def.encapsulate.as_deref();
    match def.kind {
        Fqdn if def.array => fqdn_list(buf).map(|d| Value::plain(&d)),
        Empty => match encap {
            Some(space) => Ok(Value { data: Vec::new(), subs: unpack_suboptions(buf, space, defs, def.code == 43)? }),
            // A plain empty option: Kea drops whatever data came with it.
            None => Ok(Value::default()),
        },
        Binary => Ok(Value::plain(buf)),
        Int8 | Int16 | Int32 | Uint8 | Uint16 | Uint32 => {
            let n = def.kind.fixed_len().unwrap_or(1);
            if def.array {
                if buf.is_empty() {
                    return Err(format!("option {name} has no values; give at least one"));
                }
                if !buf.len().is_multiple_of(n) {
                    return Err(format!("option {name}: {} bytes is not a whole number of {n}-byte values", buf.len()));
                }
                return Ok(Value::plain(buf));
            }
            if buf.len() < n {
                return Err(format!("option {name} needs {n} bytes, got {}", buf.len()));
            }
            Ok(Value { data: buf[..n].to_vec(), subs: unpack_suboptions(&buf[n..], encap.unwrap_or(""), defs, false)? })
        }
        Ipv4Address | Ipv6Address if def.array => {
            let n = def.kind.fixed_len().unwrap_or(4);
            if !buf.len().is_multiple_of(n) {
                return Err(format!("option {name}: {} bytes is not a whole number of {n}-byte addresses", buf.len()));
            }
            Ok(Value::plain(buf))
        }
        DataType::String => {
            let end = buf.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            if end == 0 {
                return Err(format!("option {name} holds a string, which must not be empty or only NULs"));
            }
            Ok(Value::plain(&buf[..end]))
        }
        Tuple if def.array => {
            let mut i = 0;
            while i < buf.len() {
                i += 1 + usize::from(buf[i]);
                if i > buf.len() {
                    return Err(format!("option {name}: a tuple runs past the end of the data"));
                }
            }
            Ok(Value::plain(buf))
        }
        _ => custom(def, defs, buf),
    }
}

/// Kea's `OptionCustom`: the fields one after the other, the last
/// repeated for an array (a partial last value is dropped), then
/// sub-options if the definition encapsulates a space.
fn custom(def: &OptionDef, defs: &OptionDefs, buf: &[u8]) -> Result<Value, String> {
    let truncated = || format!("option {}: the data is too short for its fields ({})", def.name, layout_names(def));
    let mut data = Vec::new();
    let mut rest = buf;
    let take = |t: DataType, rest: &mut &[u8], data: &mut Vec<u8>, in_array: bool| -> Result<bool, String> {
        let n = field_len(t, rest, in_array, def.array)?;
        if n == 0 || rest.len() < n {
            return Ok(false);
        }
        data.extend_from_slice(&rest[..n]);
        *rest = &rest[n..];
        Ok(true)
    };
    let fields = def.layout();
    if def.kind == Record {
        for f in fields {
            let n = field_len(*f, rest, false, def.array)?;
            if rest.len() < n {
                return Err(truncated());
            }
            data.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
    } else {
        if rest.len() < def.kind.fixed_len().unwrap_or(0) {
            return Err(truncated());
        }
        if !def.array && !take(def.kind, &mut rest, &mut data, false)? {
            return Err(truncated());
        }
    }
    if def.array {
        let last = fields[fields.len() - 1];
        while !rest.is_empty() && take(last, &mut rest, &mut data, true)? {}
        return Ok(Value { data, subs: Vec::new() });
    }
    let subs = match def.encapsulate.as_deref() {
        Some(space) if !rest.is_empty() => unpack_suboptions(rest, space, defs, def.code == 43)?,
        _ => Vec::new(),
    };
    Ok(Value { data, subs })
}

fn layout_names(def: &OptionDef) -> String {
    def.layout().iter().map(|t| t.kea_name()).collect::<Vec<_>>().join(", ")
}

/// How many bytes the field of type `t` at the start of `rest` takes
/// (Kea's `OptionCustom::bufferLength`).
fn field_len(t: DataType, rest: &[u8], in_array: bool, def_array: bool) -> Result<usize, String> {
    if let Some(n) = t.fixed_len() {
        return Ok(n);
    }
    match t {
        Fqdn => {
            let (wire, _) = read_name(rest, 0)?;
            // Kea measures the name's text plus one: the root name "." is 2.
            Ok(if wire.len() == 1 { 2 } else { wire.len() })
        }
        DataType::String | Binary if !def_array => Ok(rest.len()),
        Ipv6Prefix => {
            if rest.is_empty() && !in_array {
                return Ok(0);
            }
            let len = *rest.first().ok_or("an IPv6 prefix field is missing")?;
            if len > 128 {
                return Err(format!("IPv6 prefix length {len} is greater than 128"));
            }
            let n = 1 + usize::from(len).div_ceil(8);
            if rest.len() < n {
                return Err(format!("an IPv6 prefix of length {len} is truncated"));
            }
            Ok(n)
        }
        Tuple => {
            let len = *rest.first().ok_or("a tuple field is missing")?;
            let n = 1 + usize::from(len);
            if rest.len() < n {
                return Err("a tuple field runs past the end of the data".into());
            }
            Ok(n)
        }
        _ => Err("the data is too short for the option's fields".into()),
    }
}

/// Option 124: enterprise number and a length-prefixed vendor class, then
/// further (enterprise number, class) pairs, as Kea's `OptionVendorClass`
/// reads them (its checks, including its quirk of needing two bytes after
/// a further enterprise number).
fn vendor_class(buf: &[u8]) -> Result<(), String> {
    if buf.len() < 5 {
        return Err("vivco-suboptions needs an enterprise number and a vendor class (at least 5 bytes)".into());
    }
    let rest = &buf[4..];
    let mut off = 0;
    while off < rest.len() {
        off += 1 + usize::from(rest[off]);
        if off > rest.len() {
            return Err("vivco-suboptions: a vendor class runs past the end of the data".into());
        }
        if off != rest.len() {
            off += 4;
            if off + 1 >= rest.len() {
                return Err("vivco-suboptions: an enterprise number must be followed by a vendor class".into());
            }
        }
    }
    Ok(())
}

/// Option 125: enterprise number, then (data-len, sub-options) chunks, as
/// Kea's `OptionVendor` reads them. The value's data is the enterprise
/// number; the data-len byte is written again when the option is sent.
fn vendor_options(buf: &[u8], defs: &OptionDefs) -> Result<Value, String> {
    let id: [u8; 4] =
        buf.get(..4).and_then(|b| b.try_into().ok()).ok_or("vivso-suboptions needs a 4-byte enterprise number")?;
    let space = format!("vendor-{}", u32::from_be_bytes(id));
    let mut subs = Vec::new();
    let mut off = 4;
    while off < buf.len() {
        let end = off + 1 + usize::from(buf[off]);
        if end > buf.len() {
            return Err("vivso-suboptions: the sub-option data is truncated".into());
        }
        off += 1;
        while off < end {
            let code = buf[off];
            if off + 2 > end || off + 2 + usize::from(buf[off + 1]) > end {
                return Err(format!("vivso-suboptions: sub-option {code} is truncated"));
            }
            let body = &buf[off + 2..off + 2 + usize::from(buf[off + 1])];
            subs.push((code, suboption_payload(&space, code, body, defs)?));
            off += 2 + body.len();
        }
    }
    subs.sort_by_key(|(c, _)| *c);
    Ok(Value { data: id.to_vec(), subs })
}

/// A sub-option read from binary data, normalised by its definition.
fn suboption_payload(space: &str, code: u8, body: &[u8], defs: &OptionDefs) -> Result<Vec<u8>, String> {
    let def = if super::option_def::vendor_id(space).is_some() {
        defs.find(space, super::option_def::Key::Code(code))
    } else {
        defs.find_for_unpack(space, code)
    };
    match def {
        Some(d) => pack_value(&from_buffer(d, defs, body).map_err(|m| format!("sub-option {space}.{code}: {m}"))?),
        None => Ok(body.to_vec()),
    }
}

/// Sub-options of `space` out of binary data, as Kea's `unpackOptions4`
/// reads them: PAD and END only in `dhcp4` (and in option 43's space,
/// `flex`, unless 0 or 255 are defined there), a truncated tail ignored.
pub fn unpack_suboptions(buf: &[u8], space: &str, defs: &OptionDefs, flex: bool) -> Result<Vec<(u8, Vec<u8>)>, String> {
    let dhcp4 = space == DHCP4;
    let pad = dhcp4 || (flex && !defs.has_runtime(space, 0));
    let end = dhcp4 || (flex && !defs.has_runtime(space, 255));
    let mut out = Vec::new();
    let mut off = 0;
    while off < buf.len() {
        let code = buf[off];
        if code == 255 && end {
            break;
        }
        if code == 0 && pad {
            off += 1;
            continue;
        }
        let Some(&len) = buf.get(off + 1) else { break };
        let body_end = off + 2 + usize::from(len);
        if body_end > buf.len() {
            break;
        }
        let body = &buf[off + 2..body_end];
        off = body_end;
        // Kea leaves 43 and 224–254 of dhcp4 raw (their definitions are
        // chosen later), and skips string options holding only NULs.
        let deferred = dhcp4 && (code == 43 || code >= 224);
        let def = if deferred { None } else { defs.find_for_unpack(space, code) };
        if def.is_some_and(|d| d.kind == DataType::String) && body.iter().all(|b| *b == 0) {
            continue;
        }
        let payload = match def {
            Some(d) => pack_value(&from_buffer(d, defs, body).map_err(|m| format!("sub-option {space}.{code}: {m}"))?)?,
            None => body.to_vec(),
        };
        out.push((code, payload));
    }
    out.sort_by_key(|(c, _)| *c);
    Ok(out)
}

/// The payload of an option with value `v`: data, then sub-options.
pub fn pack_value(v: &Value) -> Result<Vec<u8>, String> {
    let mut out = v.data.clone();
    pack_tlvs(&v.subs, &mut out)?;
    Ok(out)
}

/// Appends code-length-payload triplets.
pub fn pack_tlvs(subs: &[(u8, Vec<u8>)], out: &mut Vec<u8>) -> Result<(), String> {
    for (code, payload) in subs {
        let len = u8::try_from(payload.len())
            .map_err(|_| format!("sub-option {code} would be {} bytes long; at most 255 fit", payload.len()))?;
        out.push(*code);
        out.push(len);
        out.extend_from_slice(payload);
    }
    Ok(())
}

/// One domain name in wire format starting at `at` in `buf`, following
/// compression pointers backwards: (the uncompressed name, the bytes it
/// takes at `at`).
fn read_name(buf: &[u8], at: usize) -> Result<(Vec<u8>, usize), String> {
    let mut out = Vec::new();
    let mut pos = at;
    let mut consumed = None;
    loop {
        let len = *buf.get(pos).ok_or("a domain name is truncated")?;
        match len {
            0 => {
                out.push(0);
                let used = consumed.unwrap_or_else(|| pos + 1 - at);
                if out.len() > 255 {
                    return Err("a domain name is longer than 255 bytes".into());
                }
                return Ok((out, used));
            }
            1..=63 => {
                let label = buf.get(pos + 1..pos + 1 + usize::from(len)).ok_or("a domain name is truncated")?;
                out.push(len);
                out.extend_from_slice(label);
                pos += 1 + usize::from(len);
            }
            0xc0..=0xff => {
                let low = *buf.get(pos + 1).ok_or("a domain name is truncated")?;
                let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                if target >= pos {
                    return Err("a domain name compression pointer does not point backwards".into());
                }
                consumed.get_or_insert(pos + 2 - at);
                pos = target;
            }
            _ => return Err(format!("invalid domain name label type {len:#04x}")),
        }
    }
}

/// Kea's FQDN list options (arrays of `fqdn`): names one after the other,
/// possibly compressed, re-written uncompressed. Never empty.
fn fqdn_list(buf: &[u8]) -> Result<Vec<u8>, String> {
    if buf.is_empty() {
        return Err("an FQDN list needs at least one name".into());
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let (name, used) = read_name(buf, at)?;
        out.extend_from_slice(&name);
        at += used;
    }
    Ok(out)
}

fn write_value(ty: DataType, v: &str, out: &mut Vec<u8>) -> Result<(), String> {
    match ty {
        Binary => out.extend(decode_plain_hex(v).ok_or_else(|| format!("{v:?} is not hexadecimal bytes"))?),
        Boolean => out.push(u8::from(parse_bool(v)?)),
        Int8 => out.push(parse_int(v, i64::from(i8::MIN), i64::from(i8::MAX))? as i8 as u8),
        Int16 => out.extend((parse_int(v, i64::from(i16::MIN), i64::from(i16::MAX))? as i16).to_be_bytes()),
        Int32 => out.extend((parse_int(v, i64::from(i32::MIN), i64::from(i32::MAX))? as i32).to_be_bytes()),
        Uint8 => out.push(parse_int(v, 0, i64::from(u8::MAX))? as u8),
        Uint16 => out.extend((parse_int(v, 0, i64::from(u16::MAX))? as u16).to_be_bytes()),
        Uint32 => out.extend((parse_int(v, 0, i64::from(u32::MAX))? as u32).to_be_bytes()),
        Ipv4Address => out.extend(parse_ipv4(v)?.octets()),
        Ipv6Address => out.extend(parse_ipv6(v)?.octets()),
        Ipv6Prefix => write_prefix(v, out)?,
        Psid => write_psid(v, out)?,
        DataType::String => out.extend(v.as_bytes()),
        Tuple => {
            let len =
                u8::try_from(v.len()).map_err(|_| format!("tuple value of {} bytes; at most 255 fit", v.len()))?;
            out.push(len);
            out.extend(v.as_bytes());
        }
        Fqdn => write_fqdn(v, out)?,
        Empty | Record => {
            return Err(format!("a {} value cannot be written as a field", ty.kea_name()));
        }
    }
    Ok(())
}

fn parse_ipv4(v: &str) -> Result<Ipv4Addr, String> {
    v.parse::<Ipv4Addr>().map_err(|_| format!("{v:?} is not an IPv4 address"))
}

fn parse_ipv6(v: &str) -> Result<Ipv6Addr, String> {
    v.parse::<Ipv6Addr>().map_err(|_| format!("{v:?} is not an IPv6 address"))
}

/// Kea's integer text: decimal (with optional sign), else hexadecimal with
/// or without `0x`, then range-checked.
pub fn parse_int(v: &str, min: i64, max: i64) -> Result<i64, String> {
    let n = v.parse::<i64>().ok().or_else(|| {
        let h = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")).unwrap_or(v);
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        i64::from_str_radix(h, 16).ok()
    });
    match n {
        None => Err(format!("{v:?} is not an integer")),
        Some(n) if n < min || n > max => Err(format!("{v} is out of range {min}..{max}")),
        Some(n) => Ok(n),
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        match v.parse::<i32>() {
            Ok(0) => Ok(false),
            Ok(1) => Ok(true),
            _ => Err(format!("{v:?} is not a boolean (true, false, 1 or 0)")),
        }
    }
}

/// RFC 1035 wire format, uncompressed, always ending with the root label.
pub fn write_fqdn(name: &str, out: &mut Vec<u8>) -> Result<(), String> {
    if name.contains('\\') {
        return Err(format!("{name:?}: escapes in domain names are not supported"));
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let start = out.len();
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() {
                return Err(format!("{name:?} has an empty label"));
            }
            if label.len() > 63 {
                return Err(format!("{name:?} has a label longer than 63 bytes"));
            }
            out.push(label.len() as u8);
            out.extend(label.as_bytes());
        }
    } else if name.is_empty() {
        return Err("empty domain name".into());
    }
    out.push(0);
    if out.len() - start > 255 {
        return Err(format!("{name:?} is longer than 255 bytes in wire format"));
    }
    Ok(())
}

/// `value/length` as Kea writes a PSID: the length, then the PSID in the
/// top bits of 16.
fn write_psid(v: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let compact: String = v.chars().filter(|c| *c != ' ' && *c != '\t').collect();
    let (psid, len) = compact.split_once('/').ok_or_else(|| format!("{v:?} is not a PSID value/length"))?;
    let psid = parse_int(psid, 0, i64::from(u16::MAX))? as u32;
    let len = parse_int(len, 0, 16)? as u32;
    if len > 0 && psid > (0xffff >> (16 - len)) {
        return Err(format!("PSID {psid} does not fit in {len} bits"));
    }
    out.push(len as u8);
    out.extend((((psid << (16 - len)) & 0xffff) as u16).to_be_bytes());
    Ok(())
}

/// `addr/len` as Kea writes an IPv6 prefix: the length, then the bytes the
/// length covers, bits past it cleared.
fn write_prefix(v: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let compact: String = v.chars().filter(|c| *c != ' ' && *c != '\t').collect();
    let (addr, len) = compact.split_once('/').ok_or_else(|| format!("{v:?} is not an IPv6 prefix addr/len"))?;
    let addr = parse_ipv6(addr)?;
    let len = parse_int(len, 0, 128).map_err(|_| format!("{v:?}: the prefix length must be 0 to 128"))? as usize;
    out.push(len as u8);
    let bytes = addr.octets();
    let n = len.div_ceil(8);
    out.extend_from_slice(&bytes[..n]);
    if !len.is_multiple_of(8)
        && let Some(last) = out.last_mut()
    {
        *last &= 0xffu8 << (8 - len % 8);
    }
    Ok(())
}

/// Splits like Kea: on commas, `\,` keeps a comma, `\\` a backslash, and
/// empty tokens are dropped.
pub fn kea_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut tok = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(',') | Some('\\') => tok.push(chars.next().unwrap_or('\\')),
                Some(_) => tok.push('\\'),
                None => tok.push('\\'),
            },
            ',' => {
                if !tok.is_empty() {
                    out.push(std::mem::take(&mut tok));
                }
            }
            c => tok.push(c),
        }
    }
    if !tok.is_empty() {
        out.push(tok);
    }
    out
}

/// Kea trims blanks, tabs and newlines only.
pub fn kea_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n'])
}

/// Plain even-length hex, as Kea's binary fields in CSV data.
fn decode_plain_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// Kea's formatted hex: `aa:bb:cc` or `aa bb cc` (1–2 digits per group, no
/// empty group), or a digit string with optional `0x` (odd length gets a
/// leading 0). Used for `csv-format: false` data and host identifiers.
pub fn decode_formatted_hex(s: &str) -> Option<Vec<u8>> {
    let sep = if s.contains(':') {
        Some(':')
    } else if s.contains(' ') {
        Some(' ')
    } else {
        None
    };
    match sep {
        Some(sep) => {
            let groups: Vec<&str> = s.split(sep).collect();
            let mut out = Vec::new();
            for g in &groups {
                if g.is_empty() {
                    if groups.len() > 1 {
                        return None;
                    }
                    continue;
                }
                if g.len() > 2 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(g, 16).ok()?);
            }
            Some(out)
        }
        None => {
            let digits = if s.len() > 2 && s.starts_with("0x") { &s[2..] } else { s };
            let padded = if !s.len().is_multiple_of(2) { format!("0{digits}") } else { digits.to_owned() };
            decode_plain_hex(&padded)
        }
    }
}

/// Kea's `'quoted'` literal (trimmed inside the quotes), or `None`.
pub fn quoted_literal(s: &str) -> Option<Vec<u8>> {
    let t = kea_trim(s);
    let inner = t.strip_prefix('\'')?.strip_suffix('\'')?;
    let inner = kea_trim(inner);
    (!inner.is_empty()).then(|| inner.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::super::option_def::{self, OptionDefs};
    use super::super::options::option_def_by_name;
    use super::*;

    fn csv(name: &str, data: &str) -> Result<Vec<u8>, String> {
        let def = option_def_by_name(name).unwrap();
        pack_value(&from_text(def, &OptionDefs::new(), data, &mut Vec::new())?)
    }

    fn def(json: &str) -> OptionDef {
        option_def::parse(&serde_json::from_str(json).unwrap(), "t").unwrap()
    }

    fn text(d: &OptionDef, data: &str) -> Result<Vec<u8>, String> {
        pack_value(&from_text(d, &OptionDefs::new(), data, &mut Vec::new())?)
    }

    fn hex(d: &OptionDef, bytes: &[u8]) -> Result<Vec<u8>, String> {
        pack_value(&from_buffer(d, &OptionDefs::new(), bytes)?)
    }

    #[test]
    fn encodes_each_standard_type() {
        assert_eq!(csv("routers", "10.0.0.1").unwrap(), [10, 0, 0, 1]);
        assert_eq!(
            csv("domain-name-servers", "192.168.42.4, 192.168.42.5").unwrap(),
            [192, 168, 42, 4, 192, 168, 42, 5]
        );
        assert_eq!(csv("subnet-mask", "255.255.255.0").unwrap(), [255, 255, 255, 0]);
        assert_eq!(csv("time-offset", "-3600").unwrap(), (-3600i32).to_be_bytes());
        assert_eq!(csv("interface-mtu", "1500").unwrap(), [0x05, 0xdc]);
        assert_eq!(csv("interface-mtu", "0x5dc").unwrap(), [0x05, 0xdc]);
        assert_eq!(csv("default-ip-ttl", "ff").unwrap(), [255]);
        assert_eq!(csv("arp-cache-timeout", "60").unwrap(), [0, 0, 0, 60]);
        assert_eq!(csv("ip-forwarding", "TRUE").unwrap(), [1]);
        assert_eq!(csv("ip-forwarding", "0").unwrap(), [0]);
        assert_eq!(csv("domain-name", "example.org").unwrap(), b"example.org");
        assert_eq!(csv("domain-name", r"a\,b").unwrap(), b"a,b");
        assert_eq!(csv("user-class", "0a0b").unwrap(), [10, 11]);
        assert_eq!(csv("path-mtu-plateau-table", "1500, 9000").unwrap(), [0x05, 0xdc, 0x23, 0x28]);
        assert_eq!(csv("domain-search", "example.com, b.c.").unwrap(), b"\x07example\x03com\x00\x01b\x01c\x00");
        assert_eq!(csv("slp-directory-agent", "true, 10.0.0.1, 10.0.0.2").unwrap(), [1, 10, 0, 0, 1, 10, 0, 0, 2]);
        assert_eq!(csv("client-ndi", "1, 2, 3").unwrap(), [1, 2, 3]);
        assert_eq!(csv("v4-portparams", "2, 3/4").unwrap(), [2, 4, 0x30, 0]);
        assert_eq!(csv("vivso-suboptions", "4491").unwrap(), [0, 0, 0x11, 0x8b]);
        assert_eq!(csv("vivco-suboptions", "4491, 03616263").unwrap(), [0, 0, 0x11, 0x8b, 3, b'a', b'b', b'c']);
        assert_eq!(csv("option-6rd", "0, 32, 2001:db8::, 192.0.2.1").unwrap().len(), 22);
        // An address list may be empty; Kea sends the option with no data.
        assert_eq!(csv("domain-name-servers", "").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn refuses_what_kea_refuses() {
        for (name, data) in [
            ("routers", "10.0.0.256"),
            ("routers", "fe80::1"),
            ("interface-mtu", "65536"),
            ("default-ip-ttl", "-1"),
            ("default-ip-ttl", "256"),
            ("time-offset", "2147483648"),
            ("time-offset", "-2147483649"),
            ("boot-size", "65536"),
            ("arp-cache-timeout", "4294967296"),
            ("ip-forwarding", "2"),
            ("subnet-mask", "255.255.266.0"),
            ("domain-name", ""),
            ("domain-search", "a..b"),
            ("domain-search", &format!("{}.com", "x".repeat(64))),
            // No values: Kea's integer arrays and FQDN lists are never empty.
            ("path-mtu-plateau-table", ""),
            ("domain-search", ""),
            // Kea measures "." as two bytes and finds the buffer truncated.
            ("v4-lost", "."),
            ("client-ndi", "1, 2"),
            ("user-class", "abc"),
            ("v4-portparams", "1, 17/4"),
            // vivco: the class must be a length-prefixed tuple.
            ("vivco-suboptions", "4491, 0a0b"),
            ("vivco-suboptions", "4491"),
        ] {
            assert!(csv(name, data).is_err(), "{name} {data:?} should be refused");
        }
    }

    #[test]
    fn extra_values_are_ignored_with_a_note() {
        let mut notes = Vec::new();
        let d = option_def_by_name("domain-name").unwrap();
        let v = from_text(d, &OptionDefs::new(), "a.example, b.example", &mut notes).unwrap();
        assert_eq!(v.data, b"a.example");
        assert!(notes[0].contains("sends the first"), "{notes:?}");
        let d = option_def_by_name("client-ndi").unwrap();
        let v = from_text(d, &OptionDefs::new(), "1, 2, 3, 4", &mut notes).unwrap();
        assert_eq!(v.data, [1, 2, 3]);
        assert_eq!(notes.len(), 2);
    }

    #[test]
    fn custom_types_and_records() {
        // Kea 2.2 ARM, "Custom DHCPv4 Options".
        let foo = def(r#"{"name": "foo", "code": 222, "type": "uint32"}"#);
        assert_eq!(text(&foo, "12345").unwrap(), [0, 0, 0x30, 0x39]);
        let bar = def(r#"{"name": "bar", "code": 223, "type": "record",
            "record-types": "ipv4-address, uint16, boolean, string"}"#);
        let mut want = vec![192, 0, 2, 100, 0, 123, 1];
        want.extend(b"Hello World");
        assert_eq!(text(&bar, "192.0.2.100, 123, true, Hello World").unwrap(), want);
        let bar_array = def(r#"{"name": "bar", "code": 223, "type": "record", "array": true,
            "record-types": "ipv4-address, uint16"}"#);
        assert_eq!(text(&bar_array, "192.0.2.100, 1, 2, 3").unwrap(), [192, 0, 2, 100, 0, 1, 0, 2, 0, 3]);
        assert!(text(&bar_array, "192.0.2.100").is_err(), "a record needs every field once");
        // The other types.
        let t = |ty: &str, array: bool, data: &str| {
            text(&def(&format!(r#"{{"name": "x", "code": 200, "type": "{ty}", "array": {array}}}"#)), data)
        };
        assert_eq!(t("int8", false, "-1").unwrap(), [0xff]);
        assert_eq!(t("int16", true, "-2, 3").unwrap(), [0xff, 0xfe, 0, 3]);
        assert!(t("int8", false, "128").is_err());
        assert_eq!(t("uint8", true, "1, 0x2, 3").unwrap(), [1, 2, 3]);
        assert_eq!(t("ipv6-address", false, "2001:db8::1").unwrap()[..2], [0x20, 0x01]);
        assert_eq!(t("ipv6-prefix", false, "2001:db8:ffff::/35").unwrap(), [35, 0x20, 0x01, 0x0d, 0xb8, 0xe0]);
        assert!(t("ipv6-prefix", false, "2001:db8::/129").is_err());
        assert_eq!(t("tuple", false, "abc").unwrap(), [3, b'a', b'b', b'c']);
        assert_eq!(t("tuple", true, "a, bc").unwrap(), [1, b'a', 2, b'b', b'c']);
        assert_eq!(t("fqdn", false, "a.b").unwrap(), [1, b'a', 1, b'b', 0]);
        assert_eq!(t("psid", false, "3/4").unwrap(), [4, 0x30, 0]);
        assert_eq!(t("binary", false, "0102").unwrap(), [1, 2]);
        assert_eq!(t("boolean", true, "true, 0, 1").unwrap(), [1, 0, 1]);
        assert_eq!(t("empty", false, "").unwrap(), Vec::<u8>::new());
        assert!(t("empty", false, "01").is_err(), "an empty option takes no data");
        assert!(t("string", false, "").is_err());
    }

    #[test]
    fn binary_data_is_read_as_kea_reads_it() {
        let d = |json: &str| def(json);
        let ip_list = d(r#"{"name": "x", "code": 200, "type": "ipv4-address", "array": true}"#);
        assert_eq!(hex(&ip_list, &[192, 0, 2, 1]).unwrap(), [192, 0, 2, 1]);
        assert!(hex(&ip_list, &[192, 0, 2]).is_err());
        assert_eq!(hex(&ip_list, &[]).unwrap(), Vec::<u8>::new());
        let u16s = d(r#"{"name": "x", "code": 200, "type": "uint16", "array": true}"#);
        assert!(hex(&u16s, &[]).is_err() && hex(&u16s, &[1, 2, 3]).is_err());
        // A single address keeps 4 bytes; Kea drops what follows.
        let ip = d(r#"{"name": "x", "code": 200, "type": "ipv4-address"}"#);
        assert_eq!(hex(&ip, &[10, 0, 0, 1, 9]).unwrap(), [10, 0, 0, 1]);
        assert!(hex(&ip, &[10, 0, 0]).is_err());
        // An integer followed by well-formed sub-options keeps them.
        let int = d(r#"{"name": "x", "code": 200, "type": "uint8"}"#);
        assert_eq!(hex(&int, &[7, 2, 1, 0xaa, 1, 1, 0xbb]).unwrap(), [7, 1, 1, 0xbb, 2, 1, 0xaa]);
        // Trailing NULs of a string go.
        let s = d(r#"{"name": "x", "code": 200, "type": "string"}"#);
        assert_eq!(hex(&s, b"ab\0\0").unwrap(), b"ab");
        assert!(hex(&s, b"\0").is_err());
        // A compressed FQDN list is written out uncompressed.
        let list = option_def_by_name("domain-search").unwrap();
        let compressed = b"\x01a\x03com\x00\x01b\xc0\x02";
        assert_eq!(hex(list, compressed).unwrap(), b"\x01a\x03com\x00\x01b\x03com\x00");
        assert!(hex(list, b"\x01a\xc0\x05").is_err(), "forward pointer");
        // A pointer back to the first name from a later one.
        let back = b"\x01a\x03com\x00\x01b\x00\x01c\xc0\x00";
        assert_eq!(hex(list, back).unwrap(), b"\x01a\x03com\x00\x01b\x00\x01c\x01a\x03com\x00");
        // A record whose last field repeats drops a partial value.
        let rec = d(r#"{"name": "x", "code": 200, "type": "record", "array": true, "record-types": "uint8, uint16"}"#);
        assert_eq!(hex(&rec, &[1, 0, 2, 0, 3, 9]).unwrap(), [1, 0, 2, 0, 3]);
        assert!(hex(&rec, &[1, 0]).is_err());
        // vivso: enterprise number, then (data-len, sub-options) chunks.
        let vivso = option_def_by_name("vivso-suboptions").unwrap();
        let v = from_buffer(vivso, &OptionDefs::new(), &[0, 0, 0x11, 0x8b, 6, 2, 4, 10, 0, 0, 1]).unwrap();
        assert_eq!((v.data, v.subs), (vec![0, 0, 0x11, 0x8b], vec![(2, vec![10, 0, 0, 1])]));
        assert!(from_buffer(vivso, &OptionDefs::new(), &[0, 0, 0x11, 0x8b, 6, 2, 4, 10]).is_err());
        assert!(from_buffer(vivso, &OptionDefs::new(), &[0, 0, 0x11]).is_err());
        // DOCSIS tftp-servers (vendor-4491 code 2) is an address list.
        assert!(from_buffer(vivso, &OptionDefs::new(), &[0, 0, 0x11, 0x8b, 5, 2, 3, 10, 0, 0]).is_err());
    }

    #[test]
    fn vendor_encapsulated_binary_is_parsed_into_sub_options() {
        let defs = OptionDefs::new();
        let d43 = defs.find(option_def::DHCP4, option_def::Key::Code(43)).unwrap();
        // Sub-options are re-ordered by code; PAD and END are honoured in
        // 43 unless defined; a truncated tail is dropped.
        let v = from_buffer(d43, &defs, &[2, 1, 0xaa, 0, 1, 1, 0xbb, 255, 3, 1]).unwrap();
        assert_eq!(v.subs, [(1, vec![0xbb]), (2, vec![0xaa])]);
        let v = from_buffer(d43, &defs, &[2, 1, 0xaa, 3, 5, 1]).unwrap();
        assert_eq!(v.subs, [(2, vec![0xaa])]);
    }

    proptest::proptest! {
        /// Hex data of any shape, for every standard definition, option
        /// 43's and a record with every variable field: refused or read,
        /// never a panic.
        #[test]
        fn binary_data_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let defs = OptionDefs::new();
            let rec = def(r#"{"name": "x", "code": 200, "type": "record", "array": true,
                "record-types": "fqdn, ipv6-prefix, tuple, psid, uint8"}"#);
            let d43 = defs.find(option_def::DHCP4, option_def::Key::Code(43)).unwrap();
            for d in option_def::standard_dhcp4().iter().chain([&rec, d43]) {
                let _ = from_buffer(d, &defs, &bytes).and_then(|v| pack_value(&v));
            }
        }
    }

    #[test]
    fn formatted_hex_like_kea() {
        assert_eq!(decode_formatted_hex("01:02:0a").unwrap(), [1, 2, 10]);
        assert_eq!(decode_formatted_hex("1:2:a").unwrap(), [1, 2, 10]);
        assert_eq!(decode_formatted_hex("01 02").unwrap(), [1, 2]);
        assert_eq!(decode_formatted_hex("0x0102").unwrap(), [1, 2]);
        assert_eq!(decode_formatted_hex("102").unwrap(), [1, 2]);
        assert_eq!(decode_formatted_hex("C0000201").unwrap(), [192, 0, 2, 1]);
        assert!(decode_formatted_hex("C000020Z1").is_none());
        assert!(decode_formatted_hex("199.0.2.1").is_none());
        assert!(decode_formatted_hex("01::02").is_none());
        assert!(decode_formatted_hex("012:03").is_none());
        assert!(decode_formatted_hex("zz").is_none());
        assert_eq!(quoted_literal(" 'abc' ").unwrap(), b"abc");
        assert!(quoted_literal("abc").is_none());
    }

    #[test]
    fn tokens_like_kea() {
        assert_eq!(kea_tokens("a,,b, c"), ["a", "b", " c"]);
        assert_eq!(kea_tokens(r"a\,b,c\\"), ["a,b", r"c\"]);
        assert_eq!(kea_tokens(r"a\b"), [r"a\b"]);
    }
}
