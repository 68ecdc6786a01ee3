//! Byte offsets of every key and value in a JSON text, by JSON path.
//!
//! serde tells us *which* value is wrong (via `serde_path_to_error`) and our
//! validation knows the path of what it checks; this index turns such a path
//! into a position, so every error can say `file:line:column`. Paths use the
//! same spelling as `serde_path_to_error`: `Dhcp4.subnet4[2].pools[0].pool`.
//!
//! The scanner is deliberately forgiving and bounded: it is also run on text
//! that serde rejected, and gives up (returning what it has) on anything that
//! is not JSON instead of panicking or recursing without limit.

use std::collections::HashMap;

/// Deeper than serde_json's own recursion limit, so valid configs are covered.
const MAX_DEPTH: usize = 256;

/// Where a member's key and its value start.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    key: Option<usize>,
    value: usize,
}

/// Positions by JSON path.
#[derive(Debug, Default)]
pub(crate) struct SpanIndex {
    spans: HashMap<String, Span>,
    duplicate: Option<(String, usize)>,
}

impl SpanIndex {
    /// Scans `text`; never fails, may be partial on broken input.
    pub fn build(text: &str) -> Self {
        let mut s = Scanner { b: text.as_bytes(), text, i: 0, index: SpanIndex::default() };
        let mut path = String::new();
        let _ = s.value(&mut path, 0);
        s.index
    }

    /// The first key that appears twice in one object: its path and offset.
    /// (serde catches these in typed structs, but not inside free-form
    /// values such as hook parameters or `user-context`.)
    pub fn duplicate(&self) -> Option<(&str, usize)> {
        self.duplicate.as_ref().map(|(p, o)| (p.as_str(), *o))
    }

    /// Offset of the value at `path`, or of the nearest enclosing value.
    pub fn value(&self, path: &str) -> Option<usize> {
        self.find(path).map(|s| s.value)
    }

    /// Offset of the key at `path` (falls back to its value, then to the
    /// nearest enclosing value).
    pub fn key(&self, path: &str) -> Option<usize> {
        self.find(path).map(|s| s.key.unwrap_or(s.value))
    }

    fn find(&self, path: &str) -> Option<Span> {
        let mut p = path;
        loop {
            if let Some(s) = self.spans.get(p) {
                return Some(*s);
            }
            if p.is_empty() {
                return None;
            }
            p = parent(p);
        }
    }
}

/// `a.b[3].c` → `a.b[3]` → `a.b` → `a` → ``.
fn parent(p: &str) -> &str {
    if p.ends_with(']')
        && let Some(i) = p.rfind('[')
    {
        return &p[..i];
    }
    match p.rfind(['.', '[']) {
        Some(i) => &p[..i],
        None => "",
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
    index: SpanIndex,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    fn value(&mut self, path: &mut String, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        let start = self.i;
        self.index.spans.entry(path.clone()).or_default().value = start;
        match *self.b.get(self.i)? {
            b'{' => self.object(path, depth),
            b'[' => self.array(path, depth),
            b'"' => self.string().map(|_| ()),
            _ => {
                while self.i < self.b.len()
                    && !matches!(self.b[self.i], b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n')
                {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }

    /// Skips a string, returning its decoded contents.
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        self.i += 1;
        let mut escaped = false;
        while self.i < self.b.len() && self.b[self.i] != b'"' {
            escaped |= self.b[self.i] == b'\\';
            self.i += if self.b[self.i] == b'\\' { 2 } else { 1 };
        }
        if self.i >= self.b.len() {
            return None;
        }
        self.i += 1;
        let raw = self.text.get(start..self.i)?;
        if escaped { serde_json::from_str(raw).ok() } else { Some(raw[1..raw.len() - 1].to_owned()) }
    }

    fn object(&mut self, path: &mut String, depth: usize) -> Option<()> {
        self.i += 1;
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return None;
            }
            let key_at = self.i;
            let key = self.string()?;
            self.ws();
            if self.b.get(self.i) != Some(&b':') {
                return None;
            }
            self.i += 1;
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key);
            let span = self.index.spans.entry(path.clone()).or_default();
            if span.key.is_some() && self.index.duplicate.is_none() {
                self.index.duplicate = Some((path.clone(), key_at));
            }
            span.key = Some(key_at);
            let r = self.value(path, depth + 1);
            path.truncate(len);
            r?;
            self.ws();
            match self.b.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, path: &mut String, depth: usize) -> Option<()> {
        self.i += 1;
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Some(());
        }
        let mut n = 0usize;
        loop {
            let len = path.len();
            path.push_str(&format!("[{n}]"));
            let r = self.value(path, depth + 1);
            path.truncate(len);
            r?;
            n += 1;
            self.ws();
            match self.b.get(self.i)? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_values_and_nearest_parent() {
        let text = r#"{"Dhcp4": {"subnet4": [ {"id": 1}, {"id": 2, "pools": [{"pool": "x"}]} ], "a\"b": 3}}"#;
        let idx = SpanIndex::build(text);
        let v = idx.value("Dhcp4.subnet4[1].pools[0].pool").unwrap();
        assert_eq!(&text[v..v + 3], "\"x\"");
        let k = idx.key("Dhcp4.subnet4[1].id").unwrap();
        assert_eq!(&text[k..k + 4], "\"id\"");
        let missing = idx.value("Dhcp4.subnet4[0].nope").unwrap();
        assert_eq!(&text[missing..missing + 1], "{");
        assert!(idx.value("Dhcp4.a\"b").is_some());
        assert!(idx.duplicate().is_none());
        let dup = SpanIndex::build(r#"{"a": [{"x": 1}, {"x": 2, "y": {"z": 1, "z": 2}}]}"#);
        assert_eq!(dup.duplicate().unwrap().0, "a[1].y.z");
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent("a.b[3].c"), "a.b[3]");
        assert_eq!(parent("a.b[3]"), "a.b");
        assert_eq!(parent("a"), "");
    }

    #[test]
    fn broken_or_deep_input_does_not_panic() {
        for t in ["", "{", "[[[[", "{\"a\":", "\"unterminated", "{\"a\" 1}", "]"] {
            let _ = SpanIndex::build(t);
        }
        let deep = "[".repeat(100_000);
        let _ = SpanIndex::build(&deep);
    }
}
