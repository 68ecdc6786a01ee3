//! Evaluation of a parsed expression over one received packet, with Kea
//! 2.2's semantics (`src/lib/eval/token.cc`): every value is a byte
//! string; booleans are the strings `true` and `false`; a missing option
//! reads as the empty string (`false` for `.exists`); a value of the wrong
//! shape (a boolean that is neither, `uint16totext` of three bytes) is an
//! error, and a class whose test errs does not match.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ast::{Bool, IntKind, Length, Pkt4Field, PktField, Repr, Source, Str};

/// What an expression can read of a packet: the DHCP payload as
/// received and where it arrived.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// The BOOTP/DHCP message, at least the 240-byte header and cookie.
    pub bytes: &'a [u8],
    /// Receiving interface.
    pub iface: &'a str,
    /// IP source address.
    pub src: Ipv4Addr,
    /// IP destination address.
    pub dst: Ipv4Addr,
}

/// Why an expression has no value for a packet (Kea's `EvalTypeError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

type R<T> = Result<T, EvalError>;

/// Evaluates a class test; `member` says whether the packet is already in
/// a class.
pub fn eval_bool(e: &Bool, p: &Packet<'_>, member: &dyn Fn(&str) -> bool) -> R<bool> {
    Ok(match e {
        Bool::Not(a) => !eval_bool(a, p, member)?,
        // Both sides are evaluated, as Kea's stack machine does: an error
        // on either side is an error.
        Bool::And(a, b) => {
            let (x, y) = (eval_bool(a, p, member)?, eval_bool(b, p, member)?);
            x && y
        }
        Bool::Or(a, b) => {
            let (x, y) = (eval_bool(a, p, member)?, eval_bool(b, p, member)?);
            x || y
        }
        Bool::Equal(a, b) => eval_str(a, p, member)? == eval_str(b, p, member)?,
        Bool::Exists(src) => source(src, p).is_some(),
        Bool::VendorExists(e) => vendor(p, *e).is_some(),
        Bool::VendorClassExists(e) => vendor_class(p, *e).is_some(),
        Bool::Member(c) => member(c),
    })
}

/// Evaluates a string expression.
pub fn eval_str(e: &Str, p: &Packet<'_>, member: &dyn Fn(&str) -> bool) -> R<Vec<u8>> {
    let s = |e: &Str| eval_str(e, p, member);
    Ok(match e {
        Str::Literal(v) => v.clone(),
        Str::Option(src, repr) => match source(src, p) {
            None => Vec::new(),
            Some(v) => match repr {
                Repr::Hex => v,
                Repr::Text if matches!(src, Source::Option { string: true, .. }) => v,
                Repr::Text => option_text(src_code(src), &v).into_bytes(),
            },
        },
        Str::Pkt(f) => match f {
            PktField::Iface => p.iface.as_bytes().to_vec(),
            PktField::Src => p.src.octets().to_vec(),
            PktField::Dst => p.dst.octets().to_vec(),
            PktField::Len => (packed_len(p.bytes) as u32).to_be_bytes().to_vec(),
        },
        Str::Pkt4(f) => pkt4(p.bytes, *f),
        Str::Substring(v, start, len) => substring(&s(v)?, *start, *len)?,
        Str::Split(v, delims, field) => split(&s(v)?, &s(delims)?, *field)?,
        Str::Concat(a, b) => {
            let mut v = s(a)?;
            v.extend(s(b)?);
            v
        }
        Str::IfElse(c, a, b) => {
            // All three operands are evaluated, as in Kea.
            let (c, a, b) = (eval_bool(c, p, member)?, s(a)?, s(b)?);
            if c { a } else { b }
        }
        Str::HexString(v, sep) => {
            let (v, sep) = (s(v)?, s(sep)?);
            let mut out = Vec::new();
            for (i, b) in v.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(&sep);
                }
                out.extend(format!("{b:02x}").bytes());
            }
            out
        }
        Str::AddrToText(v) => {
            let v = s(v)?;
            match v.len() {
                0 => v,
                4 => Ipv4Addr::from(<[u8; 4]>::try_from(&v[..]).unwrap_or_default()).to_string().into_bytes(),
                16 => Ipv6Addr::from(<[u8; 16]>::try_from(&v[..]).unwrap_or_default()).to_string().into_bytes(),
                _ => return Err(EvalError("Can not convert to valid address.".into())),
            }
        }
        Str::IntToText(kind, v) => int_to_text(*kind, &s(v)?)?,
        Str::VendorEnterprise => vendor(p, 0).map(|(e, _)| e.to_be_bytes().to_vec()).unwrap_or_default(),
        Str::VendorClassEnterprise => vendor_class(p, 0).map(|(e, _)| e.to_be_bytes().to_vec()).unwrap_or_default(),
        Str::VendorClassData(e, i) => {
            vendor_class(p, *e).and_then(|(_, tuples)| tuples.get(usize::from(*i)).map(|t| t.to_vec())).unwrap_or_default()
        }
    })
}

/// The option whose text a `.text` describes.
fn src_code(src: &Source) -> u8 {
    match src {
        Source::Option { code, .. } => *code,
        Source::SubOption { sub, .. } | Source::Relay4(sub) | Source::VendorOption { sub, .. } => *sub,
    }
}

/// Kea's `Option::toText(0)` for an option it keeps as raw bytes:
/// `type=061, len=007: 01:02:…`.
fn option_text(code: u8, data: &[u8]) -> String {
    let hex: Vec<String> = data.iter().map(|b| format!("{b:02x}")).collect();
    format!("type={code:03}, len={:03}: {}", data.len(), hex.join(":"))
}

/// The TLVs of an options field (stops at END or at a cut-off option).
fn tlvs(mut b: &[u8], pad_end: bool) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        loop {
            let (&code, rest) = b.split_first()?;
            if pad_end && code == 0 {
                b = rest;
                continue;
            }
            if pad_end && code == 255 {
                return None;
            }
            let (&len, rest) = rest.split_first()?;
            let (v, rest) = rest.split_at_checked(usize::from(len))?;
            b = rest;
            return Some((code, v));
        }
    })
}

/// Sub-options of `data` when it is exactly a TLV list, sorted by code as
/// Kea packs the sub-options it parsed.
fn sub_options(data: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut used = 0;
    let mut subs: Vec<(u8, &[u8])> = tlvs(data, false).inspect(|(_, v)| used += 2 + v.len()).collect();
    (used == data.len()).then(|| {
        subs.sort_by_key(|(c, _)| *c);
        subs
    })
}

fn top_option<'a>(p: &Packet<'a>, code: u8) -> Option<&'a [u8]> {
    tlvs(p.bytes.get(240..)?, true).find(|(c, _)| *c == code).map(|(_, v)| v)
}

/// Packs sub-options back to back.
fn pack(subs: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (c, v) in subs {
        out.push(*c);
        out.push(v.len() as u8);
        out.extend_from_slice(v);
    }
    out
}

/// The bytes a source names, if present. Options Kea keeps as strings
/// lose trailing NULs (and are absent if nothing else is left); options
/// carrying sub-options are repacked in code order.
fn source(src: &Source, p: &Packet<'_>) -> Option<Vec<u8>> {
    match src {
        Source::Option { code, string } => {
            let v = top_option(p, *code)?;
            if *string {
                let n = v.iter().rposition(|&b| b != 0)? + 1;
                return Some(v[..n].to_vec());
            }
            if matches!(code, 43 | 82)
                && let Some(subs) = sub_options(v)
            {
                return Some(pack(&subs));
            }
            Some(v.to_vec())
        }
        Source::SubOption { code, sub } => {
            let parent = if *code == 125 { vendor(p, 0)?.1 } else { top_option(p, *code)? };
            sub_options(parent)?.into_iter().find(|(c, _)| c == sub).map(|(_, v)| v.to_vec())
        }
        Source::Relay4(sub) => sub_options(top_option(p, 82)?)?.into_iter().find(|(c, _)| c == sub).map(|(_, v)| v.to_vec()),
        Source::VendorOption { enterprise, sub } => {
            let (_, data) = vendor(p, *enterprise)?;
            sub_options(data)?.into_iter().find(|(c, _)| c == sub).map(|(_, v)| v.to_vec())
        }
    }
}

/// Option 125: the first vendor's enterprise number and sub-option data,
/// when its enterprise is `enterprise` (0: any).
fn vendor<'a>(p: &Packet<'a>, enterprise: u32) -> Option<(u32, &'a [u8])> {
    let v = top_option(p, 125)?;
    let e = u32::from_be_bytes(v.get(..4)?.try_into().ok()?);
    let len = usize::from(*v.get(4)?);
    let data = v.get(5..5 + len)?;
    (enterprise == 0 || enterprise == e).then_some((e, data))
}

/// Option 124: the first enterprise number and every data chunk (Kea
/// reads one tuple after each enterprise number).
fn vendor_class<'a>(p: &Packet<'a>, enterprise: u32) -> Option<(u32, Vec<&'a [u8]>)> {
    let v = top_option(p, 124)?;
    let e = u32::from_be_bytes(v.get(..4)?.try_into().ok()?);
    if enterprise != 0 && enterprise != e {
        return None;
    }
    let mut tuples = Vec::new();
    let mut rest = &v[4..];
    loop {
        let (&len, r) = rest.split_first()?;
        let (t, r) = r.split_at_checked(usize::from(len))?;
        tuples.push(t);
        if r.is_empty() {
            break;
        }
        rest = r.get(4..)?;
    }
    Some((e, tuples))
}

/// Kea's `Pkt4::len()`: header, cookie, each option, END.
fn packed_len(b: &[u8]) -> usize {
    240 + b.get(240..).map_or(0, |o| tlvs(o, true).map(|(_, v)| 2 + v.len()).sum::<usize>()) + 1
}

fn pkt4(b: &[u8], f: Pkt4Field) -> Vec<u8> {
    let at = |o: usize, n: usize| b.get(o..o + n).map(<[u8]>::to_vec).unwrap_or_default();
    let word = |v: u32| v.to_be_bytes().to_vec();
    match f {
        Pkt4Field::Mac => {
            let hlen = usize::from(b.get(2).copied().unwrap_or(0).min(16));
            at(28, hlen)
        }
        Pkt4Field::Hlen => word(u32::from(b.get(2).copied().unwrap_or(0))),
        Pkt4Field::Htype => word(u32::from(b.get(1).copied().unwrap_or(0))),
        Pkt4Field::Ciaddr => at(12, 4),
        Pkt4Field::Yiaddr => at(16, 4),
        Pkt4Field::Siaddr => at(20, 4),
        Pkt4Field::Giaddr => at(24, 4),
        Pkt4Field::TransId => at(4, 4),
        Pkt4Field::MsgType => {
            let t = b.get(240..).and_then(|o| tlvs(o, true).find(|(c, _)| *c == 53)).and_then(|(_, v)| v.first().copied());
            word(u32::from(t.unwrap_or(0)))
        }
    }
}

/// `lexical_cast<int>` of a decimal position: out of `int` range is an error.
fn as_int(n: i64, what: &str) -> R<i64> {
    i32::try_from(n)
        .map(i64::from)
        .map_err(|_| EvalError(format!("the parameter '{n}' for {what} couldn't be converted to an integer.")))
}

fn substring(v: &[u8], start: i64, len: Length) -> R<Vec<u8>> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let mut start = as_int(start, "the starting position of the substring")?;
    let mut len = match len {
        Length::All => v.len() as i64,
        Length::N(n) => as_int(n, "the length of the substring")?,
    };
    let n = v.len() as i64;
    if start < -n || start >= n {
        return Ok(Vec::new());
    }
    if start < 0 {
        start += n;
    }
    if len < 0 {
        len = -len;
        if len <= start {
            start -= len;
        } else {
            len = start;
            start = 0;
        }
    }
    let end = (start + len).min(n);
    Ok(v[start as usize..end as usize].to_vec())
}

fn split(v: &[u8], delims: &[u8], field: i64) -> R<Vec<u8>> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let field = as_int(field, "the field field for split")?;
    if delims.is_empty() {
        return Ok(v.to_vec());
    }
    let fields: Vec<&[u8]> = v.split(|b| delims.contains(b)).collect();
    if field < 1 || field as usize > fields.len() {
        return Ok(Vec::new());
    }
    Ok(fields[field as usize - 1].to_vec())
}

fn int_to_text(kind: IntKind, v: &[u8]) -> R<Vec<u8>> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let (size, name) = match kind {
        IntKind::I8 => (1, "int8"),
        IntKind::U8 => (1, "uint8"),
        IntKind::I16 => (2, "int16"),
        IntKind::U16 => (2, "uint16"),
        IntKind::I32 => (4, "int32"),
        IntKind::U32 => (4, "uint32"),
    };
    if v.len() != size {
        return Err(EvalError(format!("Can not convert to valid {name}.")));
    }
    let text = match kind {
        IntKind::I8 => (v[0] as i8).to_string(),
        IntKind::U8 => v[0].to_string(),
        IntKind::I16 => i16::from_be_bytes([v[0], v[1]]).to_string(),
        IntKind::U16 => u16::from_be_bytes([v[0], v[1]]).to_string(),
        IntKind::I32 => i32::from_be_bytes([v[0], v[1], v[2], v[3]]).to_string(),
        IntKind::U32 => u32::from_be_bytes([v[0], v[1], v[2], v[3]]).to_string(),
    };
    Ok(text.into_bytes())
}
