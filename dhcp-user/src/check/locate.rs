//! Finds where a JSON path's value starts in a Kea configuration text.
//!
//! The config loader keeps its own position index private, and a finding
//! about two servers is computed from validated [`Config`](crate::config::Config)s,
//! which no longer know positions. So `check` re-scans the text to turn
//! `Dhcp4.subnet4[1].pools` into `line:column`. The scanner understands
//! Kea's `#`, `//` and `/* */` comments, is bounded, never panics, and
//! simply answers `None` for anything it cannot follow (for example values
//! inside an `<?include?>`d file): the finding then names the file only.

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `Dhcp4.subnet4[1].pools` → `[Key(Dhcp4), Key(subnet4), Index(1), Key(pools)]`.
/// Keys cannot contain `.` or `[` in this spelling, which Kea keys never do.
fn steps(path: &str) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key.to_owned()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            out.push(Step::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
        }
    }
    Some(out)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

/// Nesting deeper than this is given up on rather than recursed into.
const MAX_DEPTH: usize = 128;

impl Scanner<'_> {
    fn skip_ws(&mut self) {
        loop {
            match self.b.get(self.i) {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.i += 1,
                Some(b'#') => self.skip_line(),
                Some(b'/') if self.b.get(self.i + 1) == Some(&b'/') => self.skip_line(),
                Some(b'/') if self.b.get(self.i + 1) == Some(&b'*') => {
                    self.i += 2;
                    while self.i < self.b.len() && !self.b[self.i..].starts_with(b"*/") {
                        self.i += 1;
                    }
                    self.i = (self.i + 2).min(self.b.len());
                }
                _ => return,
            }
        }
    }

    fn skip_line(&mut self) {
        while self.i < self.b.len() && self.b[self.i] != b'\n' {
            self.i += 1;
        }
    }

    /// Reads a string starting at `"`, returning its raw contents (escapes
    /// kept; Kea keys have none).
    fn string(&mut self) -> Option<&str> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let mut j = start;
        while j < self.b.len() {
            match self.b[j] {
                b'\\' => j += 2,
                b'"' => {
                    self.i = j + 1;
                    return std::str::from_utf8(&self.b[start..j]).ok();
                }
                _ => j += 1,
            }
        }
        None
    }

    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        match *self.b.get(self.i)? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let close = if self.b[self.i] == b'{' { b'}' } else { b']' };
                self.i += 1;
                loop {
                    self.skip_ws();
                    match *self.b.get(self.i)? {
                        c if c == close => {
                            self.i += 1;
                            return Some(());
                        }
                        b',' | b':' => self.i += 1,
                        _ => self.skip_value(depth + 1)?,
                    }
                }
            }
            _ => {
                let start = self.i;
                while self.i < self.b.len() && !b" \t\r\n,]}:#/".contains(&self.b[self.i]) {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }

    /// Moves to the start of the value at `path` below the current value.
    fn descend(&mut self, path: &[Step]) -> Option<()> {
        for step in path {
            self.skip_ws();
            match step {
                Step::Key(k) => {
                    if self.b.get(self.i) != Some(&b'{') {
                        return None;
                    }
                    self.i += 1;
                    loop {
                        self.skip_ws();
                        match *self.b.get(self.i)? {
                            b',' => self.i += 1,
                            b'}' => return None,
                            _ => {
                                let found = self.string()? == k.as_str();
                                self.skip_ws();
                                if self.b.get(self.i) != Some(&b':') {
                                    return None;
                                }
                                self.i += 1;
                                self.skip_ws();
                                if found {
                                    break;
                                }
                                self.skip_value(0)?;
                            }
                        }
                    }
                }
                Step::Index(n) => {
                    if self.b.get(self.i) != Some(&b'[') {
                        return None;
                    }
                    self.i += 1;
                    let mut seen = 0;
                    loop {
                        self.skip_ws();
                        match *self.b.get(self.i)? {
                            b',' => self.i += 1,
                            b']' => return None,
                            _ if seen == *n => break,
                            _ => {
                                self.skip_value(0)?;
                                seen += 1;
                            }
                        }
                    }
                }
            }
        }
        self.skip_ws();
        Some(())
    }
}

/// Byte offset where the value at `path` starts, if it can be found.
pub fn offset(text: &str, path: &str) -> Option<usize> {
    let steps = steps(path)?;
    let mut s = Scanner {
        b: text.as_bytes(),
        i: 0,
    };
    s.descend(&steps)?;
    (s.i < text.len()).then_some(s.i)
}

/// The value at `path`, or failing that at the nearest enclosing path, as
/// 1-based line and column (in characters).
pub fn line_col(text: &str, path: &str) -> Option<(u32, u32)> {
    let mut p = path;
    loop {
        if let Some(o) = offset(text, p) {
            let before = &text[..o];
            let line = before.matches('\n').count() as u32 + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
            return Some((line, col));
        }
        let cut = p.rfind(['.', '['])?;
        p = &p[..cut];
    }
}

/// The string value at `path`, if it is one.
pub fn string_at(text: &str, path: &str) -> Option<String> {
    let steps = steps(path)?;
    let mut s = Scanner {
        b: text.as_bytes(),
        i: 0,
    };
    s.descend(&steps)?;
    s.string().map(str::to_owned)
}

/// Index in `Dhcp4.hooks-libraries` of `libdhcp_ha.so`, so findings about
/// HA parameters can carry their full path.
pub fn ha_hook_index(text: &str) -> Option<usize> {
    (0..64).find(|i| {
        string_at(text, &format!("Dhcp4.hooks-libraries[{i}].library"))
            .is_some_and(|l| l.ends_with("libdhcp_ha.so"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "{\n  # comment with \"quote\n  \"Dhcp4\": { /* x */ \"a\": [1, {\"b\": \"c\"}],\n    // \"subnet4\": 1\n    \"subnet4\": [ {\"id\": 1}, {\"id\": 2} ] }\n}";

    #[test]
    fn finds_values_past_comments() {
        assert_eq!(line_col(TEXT, "Dhcp4.subnet4[1]"), Some((5, 29)));
        assert_eq!(line_col(TEXT, "Dhcp4.subnet4[1].id"), Some((5, 36)));
        assert_eq!(string_at(TEXT, "Dhcp4.a[1].b").as_deref(), Some("c"));
        // Missing leaf: falls back to the parent.
        assert_eq!(
            line_col(TEXT, "Dhcp4.subnet4[1].pools"),
            line_col(TEXT, "Dhcp4.subnet4[1]")
        );
        assert_eq!(offset(TEXT, "Dhcp4.subnet4[7]"), None);
    }

    #[test]
    fn never_panics_on_garbage() {
        for t in [
            "",
            "{",
            "[[[[",
            "{\"Dhcp4\":",
            "\"",
            "{\"a\" 1}",
            "/*",
            "{\"é\":[}",
        ] {
            let _ = line_col(t, "Dhcp4.subnet4[0].x");
            let _ = ha_hook_index(t);
        }
        let deep = "[".repeat(10_000);
        let _ = line_col(&deep, "a[0]");
    }
}
