//! Kea's JSON dialect for the `user_context` column (pure, no I/O).
//!
//! Kea's JSON strings are byte strings: its parser only knows `\u00XX`
//! escapes (one byte each) and its writer escapes every byte outside
//! printable ASCII that way. A UTF-8 "é" in a user context therefore appears
//! in a Kea lease file as `\u00c3\u00a9`. To round-trip such files without
//! mojibake we write the same way (UTF-8 bytes, each escaped) and, when
//! reading, turn string values made only of `U+0000..=U+00FF` characters
//! back into the UTF-8 text they spell. Map keys Kea writes raw, unescaped;
//! so do we, escaping only what JSON requires. We also copy Kea's layout (`{ "a": 1 }`, keys
//! sorted) so a file we compact is byte-identical to what `kea-lfc` writes.

use std::fmt::Write;

use serde_json::Value;

/// Why a user context cannot be represented the way Kea needs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Not JSON at all.
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// Kea keeps integers as `int64_t`.
    #[error("integer {0} does not fit Kea's 64-bit signed integers")]
    IntegerRange(u64),
}

/// Renders `value` as Kea's `Element::str()` would.
pub fn to_kea_json(value: &Value) -> Result<String, JsonError> {
    let mut out = String::new();
    write_value(&mut out, value)?;
    Ok(out)
}

/// Checks that `value` can be written for Kea (see [`JsonError`]).
pub fn check_kea_json(value: &Value) -> Result<(), JsonError> {
    match value {
        Value::Number(n) if !n.is_f64() && n.as_i64().is_none() => {
            Err(JsonError::IntegerRange(n.as_u64().unwrap_or_default()))
        }
        Value::Array(items) => items.iter().try_for_each(check_kea_json),
        Value::Object(map) => map.values().try_for_each(check_kea_json),
        _ => Ok(()),
    }
}

/// Parses JSON written by Kea (or by anyone), undoing Kea's byte-per-escape
/// encoding of UTF-8 text.
pub fn from_kea_json(text: &str) -> Result<Value, JsonError> {
    let mut value: Value = serde_json::from_str(text).map_err(|e| JsonError::Syntax(e.to_string()))?;
    fix_strings(&mut value);
    Ok(value)
}

fn write_value(out: &mut String, value: &Value) -> Result<(), JsonError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if n.is_f64() {
                let text = n.to_string();
                out.push_str(&text);
                // Kea adds ".0" so a whole double is not re-read as an integer.
                if !text.contains(['.', 'e', 'E']) {
                    out.push_str(".0");
                }
            } else {
                return Err(JsonError::IntegerRange(n.as_u64().unwrap_or_default()));
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push_str("[ ");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item)?;
            }
            out.push_str(" ]");
        }
        Value::Object(map) => {
            // Kea's maps are std::map: keys in byte order. serde_json's default
            // map is ordered too, but another crate could enable
            // `preserve_order`, so sort explicitly.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push_str("{ ");
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_key(out, key);
                out.push_str(": ");
                write_value(out, item)?;
            }
            out.push_str(" }");
        }
    }
    Ok(())
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..0x7f => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
    }
    out.push('"');
}

/// Kea writes map keys without escaping. We escape only what JSON needs
/// (where Kea's output would be broken anyway) and keep non-ASCII as raw
/// UTF-8, so keys come out byte-identical to Kea's.
fn write_key(out: &mut String, key: &str) {
    out.push('"');
    for c in key.chars() {
        if c.is_ascii() && !(0x20..0x7f).contains(&(c as u8)) || c == '"' || c == '\\' {
            let mut escaped = String::new();
            write_string(&mut escaped, c.encode_utf8(&mut [0; 4]));
            out.push_str(&escaped[1..escaped.len() - 1]);
        } else {
            out.push(c);
        }
    }
    out.push('"');
}

/// Reinterprets a string of `U+0000..=U+00FF` characters as the bytes Kea
/// meant, when those bytes are valid UTF-8.
fn fix_string(s: &mut String) {
    if s.is_ascii() || s.chars().any(|c| u32::from(c) > 0xff) {
        return;
    }
    let bytes: Vec<u8> = s.chars().map(|c| c as u8).collect();
    if let Ok(text) = String::from_utf8(bytes) {
        *s = text;
    }
}

fn fix_strings(value: &mut Value) {
    match value {
        Value::String(s) => fix_string(s),
        Value::Array(items) => items.iter_mut().for_each(fix_strings),
        // Keys need no fixing: Kea writes them as raw bytes, never escaped.
        Value::Object(map) => map.values_mut().for_each(fix_strings),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Found by the `lease_csv` fuzz target: a double in a user context
    /// came back one ulp off after a write and a read (serde_json's default
    /// float parser), so every lease file cleanup changed it.
    #[test]
    fn doubles_survive_a_write_and_a_read() {
        for lit in ["22222222222.014442", "0.30000000000000004", "1e300", "-5.5e-300"] {
            let v = from_kea_json(&format!("{{ \"a\": {lit} }}")).unwrap();
            assert_eq!(v["a"].as_f64(), Some(lit.parse::<f64>().unwrap()), "{lit} read exactly");
            assert_eq!(from_kea_json(&to_kea_json(&v).unwrap()).unwrap(), v, "{lit} written and read back");
        }
    }

    #[test]
    fn layout_matches_kea() {
        let v = json!({"b": [1, 2], "a": "x,y", "f": 1.5, "e": [], "m": {}, "n": null, "t": true, "w": 3.0});
        assert_eq!(
            to_kea_json(&v).unwrap(),
            r#"{ "a": "x,y", "b": [ 1, 2 ], "e": [  ], "f": 1.5, "m": {  }, "n": null, "t": true, "w": 3.0 }"#
        );
    }

    #[test]
    fn non_ascii_is_escaped_per_byte_and_read_back() {
        let v = json!({"u": "é€\n\"\\\u{1}", "ké\"\n": 1});
        let text = to_kea_json(&v).unwrap();
        assert_eq!(text, r#"{ "ké\"\n": 1, "u": "\u00c3\u00a9\u00e2\u0082\u00ac\n\"\\\u0001" }"#);
        assert_eq!(from_kea_json(&text).unwrap(), v);
        // What Kea writes when it read a raw UTF-8 "é" is read back as "é".
        assert_eq!(from_kea_json(r#"{"u":"\u00c3\u00a9"}"#).unwrap(), json!({"u": "é"}));
        // A lone Latin-1 escape that is not UTF-8 stays as that character.
        assert_eq!(from_kea_json(r#"{"u":"\u00e9"}"#).unwrap(), json!({"u": "é"}));
    }

    #[test]
    fn integers_beyond_i64_are_refused() {
        assert_eq!(check_kea_json(&json!({"a": u64::MAX})), Err(JsonError::IntegerRange(u64::MAX)));
        assert!(to_kea_json(&json!({"a": u64::MAX})).is_err());
        assert_eq!(check_kea_json(&json!({"a": i64::MIN, "b": 2.5})), Ok(()));
    }
}
