//! Kea's additions to JSON — `#`, `//` and `/* */` comments and the
//! `<?include "file"?>` directive — turned into plain JSON, keeping a map back
//! to every original file, line and column.
//!
//! Comments are blanked in place (each byte becomes a space, newlines stay),
//! so inside one file an offset in the output is the offset in the source.
//! An include directive is replaced by the included file's own expansion; the
//! output is therefore a sequence of [`Segment`]s, each a run of one file.
//! That is all error reporting needs: any output offset maps to exactly one
//! file and offset, hence to a line and column there.
//!
//! Like Kea, comment markers and directives count only outside JSON strings,
//! includes nest at most [`MAX_INCLUDE_DEPTH`] deep, and an unterminated
//! `/* */` is an error pointing at its opening. Unlike Kea, which opens a
//! relative include path from its working directory, we look next to the
//! including file first and fall back to the working directory, so a config
//! tree can be moved as a whole while anything Kea accepts still loads.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, Location};

/// How deep includes may nest (Kea's own limit).
pub const MAX_INCLUDE_DEPTH: usize = 10;

/// One source file that took part in the expansion.
#[derive(Debug)]
pub(crate) struct SourceFile {
    /// The name used in messages: as given by the caller, or the resolved
    /// include path.
    pub name: String,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    fn new(name: String, text: String) -> Self {
        let line_starts = line_starts(&text);
        SourceFile { name, text, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count());
        (line as u32 + 1, col as u32 + 1)
    }

    fn location(&self, offset: usize) -> Location {
        let (line, col) = self.line_col(offset);
        Location { file: self.name.clone(), line: Some(line), column: Some(col) }
    }
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect()
}

/// A run of output bytes copied from one source file.
#[derive(Debug, Clone, Copy)]
struct Segment {
    out: usize,
    file: usize,
    src: usize,
    len: usize,
}

/// Plain JSON text plus the map back to the sources.
#[derive(Debug)]
pub(crate) struct Expanded {
    /// The JSON text: comments blanked, includes spliced in.
    pub text: String,
    files: Vec<SourceFile>,
    segments: Vec<Segment>,
    out_line_starts: Vec<usize>,
}

impl Expanded {
    /// Where an output byte offset came from.
    pub fn location(&self, out: usize) -> Location {
        let seg = match self.segments.binary_search_by(|s| s.out.cmp(&out)) {
            Ok(i) => Some(self.segments[i]),
            Err(0) => self.segments.first().copied(),
            Err(i) => Some(self.segments[i - 1]),
        };
        match seg {
            Some(s) => {
                let within = out.saturating_sub(s.out).min(s.len);
                self.files[s.file].location(s.src + within)
            }
            None => match self.files.first() {
                Some(f) => f.location(0),
                None => Location::file_only("<config>"),
            },
        }
    }

    /// Converts serde_json's 1-based line and column in the output to an
    /// output byte offset.
    pub fn offset_of_line_col(&self, line: usize, column: usize) -> usize {
        let Some(&start) = self.out_line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let end = self.out_line_starts.get(line).map_or(self.text.len(), |&e| e.saturating_sub(1));
        (start + column.saturating_sub(1)).min(end)
    }

    /// The name of the top-level file.
    pub fn main_file(&self) -> &str {
        self.files.first().map_or("<config>", |f| f.name.as_str())
    }
}

/// Expands `text` (named `name`; relative includes resolve against `name`'s
/// directory, then the working directory).
pub(crate) fn expand(text: &str, name: &str) -> Result<Expanded, ConfigError> {
    let mut ex = Expander { files: Vec::new(), segments: Vec::new(), out: Vec::new(), stack: Vec::new() };
    let main = ex.add_file(name.to_owned(), text.to_owned());
    let base = Path::new(name).parent().map(Path::to_path_buf);
    if let Ok(canon) = std::fs::canonicalize(name) {
        ex.stack.push(canon);
    }
    ex.expand_file(main, base.as_deref(), 0)?;
    // Only whole comment bytes were blanked and only whole files spliced, so
    // the output is valid UTF-8; checked anyway rather than assumed.
    let text = String::from_utf8(ex.out).map_err(|e| ConfigError::Syntax {
        at: Location::file_only(name),
        message: format!("internal error: expansion produced invalid UTF-8: {e}"),
    })?;
    let out_line_starts = line_starts(&text);
    Ok(Expanded { text, files: ex.files, segments: ex.segments, out_line_starts })
}

struct Expander {
    files: Vec<SourceFile>,
    segments: Vec<Segment>,
    out: Vec<u8>,
    /// Canonical paths of the files being expanded, to refuse include loops.
    stack: Vec<PathBuf>,
}

/// A `<?include "x"?>` found in a file: its byte range and target.
struct Directive {
    start: usize,
    end: usize,
    target: String,
}

impl Expander {
    fn add_file(&mut self, name: String, text: String) -> usize {
        self.files.push(SourceFile::new(name, text));
        self.files.len() - 1
    }

    fn syntax(&self, file: usize, offset: usize, message: impl Into<String>) -> ConfigError {
        ConfigError::Syntax { at: self.files[file].location(offset), message: message.into() }
    }

    fn expand_file(&mut self, file: usize, base: Option<&Path>, depth: usize) -> Result<(), ConfigError> {
        let (blanked, directives) = self.scan(file)?;
        let mut pos = 0;
        for d in directives {
            self.emit(file, &blanked, pos, d.start);
            self.include(file, &d, base, depth)?;
            pos = d.end;
        }
        self.emit(file, &blanked, pos, blanked.len());
        Ok(())
    }

    fn emit(&mut self, file: usize, blanked: &[u8], from: usize, to: usize) {
        if to > from {
            self.segments.push(Segment { out: self.out.len(), file, src: from, len: to - from });
            self.out.extend_from_slice(&blanked[from..to]);
        }
    }

    fn include(&mut self, file: usize, d: &Directive, base: Option<&Path>, depth: usize) -> Result<(), ConfigError> {
        let at = self.files[file].location(d.start);
        let fail = |message: String| ConfigError::Include { at: at.clone(), target: d.target.clone(), message };
        if depth + 1 > MAX_INCLUDE_DEPTH {
            return Err(fail(format!("includes nest more than {MAX_INCLUDE_DEPTH} deep")));
        }
        let written = Path::new(&d.target);
        let mut candidates = Vec::new();
        if written.is_relative()
            && let Some(b) = base
        {
            candidates.push(b.join(written));
        }
        candidates.push(written.to_path_buf());
        candidates.dedup();
        let Some(path) = candidates.iter().find(|p| p.is_file()).cloned() else {
            let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            return Err(fail(format!("file not found (tried {})", tried.join(", "))));
        };
        let canon = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if self.stack.contains(&canon) {
            return Err(fail("include loop: the file is already being included".to_owned()));
        }
        let bytes = std::fs::read(&path).map_err(|e| fail(e.to_string()))?;
        let name = path.display().to_string();
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let f = SourceFile::new(name, lossy);
                return Err(ConfigError::Syntax { at: f.location(valid), message: "file is not valid UTF-8".into() });
            }
        };
        let child = self.add_file(name, text);
        let child_base = path.parent().map(Path::to_path_buf);
        self.stack.push(canon);
        let r = self.expand_file(child, child_base.as_deref(), depth + 1);
        self.stack.pop();
        r
    }

    /// Blanks comments and finds directives, honouring JSON strings.
    fn scan(&self, file: usize) -> Result<(Vec<u8>, Vec<Directive>), ConfigError> {
        let src = self.files[file].text.as_bytes();
        let mut out = src.to_vec();
        let mut directives = Vec::new();
        let mut i = 0;
        while i < src.len() {
            match src[i] {
                b'"' => {
                    i += 1;
                    while i < src.len() && src[i] != b'"' {
                        // Skip the escaped character, whatever it is.
                        i += if src[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                b'#' => i = blank_to_eol(&mut out, src, i),
                b'/' if src.get(i + 1) == Some(&b'/') => i = blank_to_eol(&mut out, src, i),
                b'/' if src.get(i + 1) == Some(&b'*') => {
                    let Some(close) = find(src, i + 2, b"*/") else {
                        return Err(self.syntax(file, i, "comment not closed (\"/*\" without \"*/\")"));
                    };
                    let end = close + 2;
                    blank(&mut out, i, end);
                    i = end;
                }
                b'<' if src.get(i + 1) == Some(&b'?') => {
                    let d = self.directive(file, src, i)?;
                    i = d.end;
                    directives.push(d);
                }
                _ => i += 1,
            }
        }
        Ok((out, directives))
    }

    /// Parses `<? include "name" ?>` (blanks allowed between the parts).
    fn directive(&self, file: usize, src: &[u8], start: usize) -> Result<Directive, ConfigError> {
        let bad = |at: usize, what: &str| self.syntax(file, at, what.to_owned());
        let mut i = skip_blanks(src, start + 2);
        if !src[i..].starts_with(b"include") {
            return Err(bad(start, "unknown directive: only <?include \"file\"?> is supported"));
        }
        i = skip_blanks(src, i + "include".len());
        if src.get(i) != Some(&b'"') {
            return Err(bad(i, "include directive needs a quoted file name"));
        }
        let name_start = i + 1;
        let Some(name_len) = src[name_start..].iter().position(|&b| b == b'"' || b == b'\n') else {
            return Err(bad(start, "directive not closed"));
        };
        let name_end = name_start + name_len;
        if src[name_end] != b'"' || name_len == 0 {
            return Err(bad(i, "include file name must be a non-empty quoted string on one line"));
        }
        let target = String::from_utf8_lossy(&src[name_start..name_end]).into_owned();
        i = skip_blanks(src, name_end + 1);
        if !src[i..].starts_with(b"?>") {
            return Err(bad(start, "directive not closed: expected \"?>\""));
        }
        Ok(Directive { start, end: i + 2, target })
    }
}

fn skip_blanks(src: &[u8], mut i: usize) -> usize {
    while i < src.len() && matches!(src[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

fn blank(out: &mut [u8], from: usize, to: usize) {
    for b in &mut out[from..to] {
        if *b != b'\n' {
            *b = b' ';
        }
    }
}

fn blank_to_eol(out: &mut [u8], src: &[u8], from: usize) -> usize {
    let end = src[from..].iter().position(|&b| b == b'\n').map_or(src.len(), |p| from + p);
    blank(out, from, end);
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_all_three_comment_styles_but_not_inside_strings() {
        let src = "{ # hash\n \"a\": \"x#y//z/*w*/\", // slashes\n /* block\n more */ \"b\": 1 }";
        let ex = expand(src, "t.json").unwrap();
        let v: serde_json::Value = serde_json::from_str(&ex.text).unwrap();
        assert_eq!(v["a"], "x#y//z/*w*/");
        assert_eq!(v["b"], 1);
        assert_eq!(ex.text.len(), src.len());
        assert_eq!(ex.text.matches('\n').count(), src.matches('\n').count());
    }

    #[test]
    fn escaped_quote_does_not_end_a_string() {
        let ex = expand(r#"{"a": "q\" # not a comment"}"#, "t.json").unwrap();
        let v: serde_json::Value = serde_json::from_str(&ex.text).unwrap();
        assert_eq!(v["a"], "q\" # not a comment");
    }

    #[test]
    fn unterminated_block_comment_points_at_its_start() {
        let err = expand("{\n  \"a\": 1 /* oops\n}", "u.json").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("u.json:2:10: comment not closed"), "{msg}");
    }

    #[test]
    fn locations_follow_multibyte_characters() {
        let ex = expand("{\"é\": 1, # ñ\n\"b\": 2}", "m.json").unwrap();
        let off = ex.text.find("\"b\"").unwrap();
        let at = ex.location(off);
        assert_eq!((at.line, at.column), (Some(2), Some(1)));
        let off = ex.text.find('1').unwrap();
        assert_eq!(ex.location(off).column, Some(7));
    }

    #[test]
    fn includes_relative_to_the_including_file_with_positions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sub.json"), "// sub\n\"x\": 5").unwrap();
        let main = dir.path().join("main.json");
        let text = "{\n  <?include \"sub.json\"?>,\n  \"y\": 6 }";
        std::fs::write(&main, text).unwrap();
        let ex = expand(text, main.to_str().unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&ex.text).unwrap();
        assert_eq!(v["x"], 5);
        assert_eq!(v["y"], 6);
        let at = ex.location(ex.text.find('5').unwrap());
        assert!(at.file.ends_with("sub.json"));
        assert_eq!((at.line, at.column), (Some(2), Some(6)));
        let at = ex.location(ex.text.find('6').unwrap());
        assert!(at.file.ends_with("main.json"));
        assert_eq!((at.line, at.column), (Some(3), Some(8)));
    }

    #[test]
    fn missing_include_names_directive_location_and_target() {
        let err = expand("{\n <?include \"/nonexistent/x.json\"?> }", "/etc/kea/m.json").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("/etc/kea/m.json:2:2: cannot include \"/nonexistent/x.json\""), "{msg}");
    }

    #[test]
    fn include_loop_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        std::fs::write(&a, "<?include \"a.json\"?>").unwrap();
        let err = expand("<?include \"a.json\"?>", a.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("include loop"), "{err}");
    }

    #[test]
    fn malformed_directives_are_syntax_errors() {
        for bad in ["<?include x?>", "<?frobnicate?>", "<?include \"x\"", "<?include \"\"?>"] {
            assert!(matches!(expand(bad, "d.json"), Err(ConfigError::Syntax { .. })), "{bad}");
        }
    }
}
