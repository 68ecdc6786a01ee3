//! ISC dhcpd's configuration syntax, as a tree of generic statements.
//!
//! dhcpd.conf and dhcpd.leases share one shape: a statement is a run of
//! words ended by `;`, or a run of words followed by a `{ … }` block of
//! statements. Parsing into that shape first (and giving each statement its
//! `file:line:column`) lets the converter see every statement, including
//! ones it does not know, so nothing is dropped without being reported.
//!
//! `include "file";` is resolved here, through a caller-supplied reader, so
//! this module does no I/O and can be fed arbitrary bytes by the tests.
//! Nothing here panics or recurses without bound on any input.

use std::fmt;

use thiserror::Error;

/// A position in an input file (1-based line and column, in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// The file as named (the included file for included statements).
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Why an input could not be parsed, with where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{at}: {message}")]
pub struct SyntaxError {
    /// Where the problem is.
    pub at: Pos,
    /// What is wrong.
    pub message: String,
}

/// One token of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Word {
    /// Anything unquoted: keywords, numbers, addresses, `02:00:…`, dates.
    Bare(String),
    /// A `"quoted string"` with escapes decoded (bytes, as dhcpd allows
    /// octal escapes for binary identifiers).
    Quoted(Vec<u8>),
    /// A `,` separating list values.
    Comma,
}

impl Word {
    /// The word as text (lossy for binary quoted strings).
    pub fn text(&self) -> String {
        match self {
            Word::Bare(s) => s.clone(),
            Word::Quoted(b) => String::from_utf8_lossy(b).into_owned(),
            Word::Comma => ",".into(),
        }
    }

    /// Whether this is the bare keyword `k`.
    pub fn is(&self, k: &str) -> bool {
        matches!(self, Word::Bare(s) if s.eq_ignore_ascii_case(k))
    }
}

/// A statement: its words and, for `{ … }` forms, its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Where the first word starts.
    pub at: Pos,
    /// Words before `;` or `{`.
    pub words: Vec<Word>,
    /// Statements inside `{ … }`, if the statement has a block.
    pub block: Option<Vec<Statement>>,
}

impl Statement {
    /// The words joined back into (approximate) source text, for reports.
    pub fn head(&self) -> String {
        let mut s = String::new();
        for w in &self.words {
            match w {
                Word::Comma => s.push(','),
                Word::Quoted(_) => {
                    if !s.is_empty() {
                        s.push(' ');
                    }
                    s.push_str(&format!("{:?}", w.text()));
                }
                Word::Bare(b) => {
                    if !s.is_empty() {
                        s.push(' ');
                    }
                    s.push_str(b);
                }
            }
        }
        s
    }

    /// Whether the first words are the keywords `ks`.
    pub fn starts_with(&self, ks: &[&str]) -> bool {
        ks.len() <= self.words.len() && ks.iter().zip(&self.words).all(|(k, w)| w.is(k))
    }
}

/// Reads an included file: given the name as written, returns its display
/// name and its text.
pub type IncludeReader<'a> = dyn FnMut(&str) -> Result<(String, String), String> + 'a;

/// Includes nested deeper than this are refused (also stops include loops).
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// Blocks nested deeper than this are refused.
pub const MAX_BLOCK_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(Word),
    Open,
    Close,
    Semi,
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    file: &'a str,
    line: u32,
    column: u32,
}

impl Lexer<'_> {
    fn pos(&self) -> Pos {
        Pos {
            file: self.file.to_owned(),
            line: self.line,
            column: self.column,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.column = 1;
        } else {
            self.column = self.column.saturating_add(1);
        }
        Some(c)
    }

    fn next(&mut self) -> Result<Option<(Pos, Tok)>, SyntaxError> {
        loop {
            match self.chars.peek() {
                None => return Ok(None),
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => {
                    while self.chars.peek().is_some_and(|c| *c != '\n') {
                        self.bump();
                    }
                }
                Some(_) => break,
            }
        }
        let at = self.pos();
        let c = self.bump().expect("peeked");
        let tok = match c {
            '{' => Tok::Open,
            '}' => Tok::Close,
            ';' => Tok::Semi,
            ',' => Tok::Word(Word::Comma),
            '"' => Tok::Word(Word::Quoted(self.quoted(&at)?)),
            _ => {
                let mut s = String::from(c);
                while let Some(&n) = self.chars.peek() {
                    if n.is_whitespace() || "{};,\"#".contains(n) {
                        break;
                    }
                    s.push(n);
                    self.bump();
                }
                Tok::Word(Word::Bare(s))
            }
        };
        Ok(Some((at, tok)))
    }

    fn quoted(&mut self, at: &Pos) -> Result<Vec<u8>, SyntaxError> {
        let mut out = Vec::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(SyntaxError {
                    at: at.clone(),
                    message: "unterminated quoted string".into(),
                });
            };
            match c {
                '"' => return Ok(out),
                '\\' => match self.bump() {
                    Some('n') => out.push(b'\n'),
                    Some('t') => out.push(b'\t'),
                    Some('r') => out.push(b'\r'),
                    Some(d @ '0'..='7') => {
                        // Up to three octal digits, as dhcpd writes uids.
                        let mut v = d as u32 - '0' as u32;
                        for _ in 0..2 {
                            match self.chars.peek() {
                                Some(&n @ '0'..='7') => {
                                    v = v * 8 + (n as u32 - '0' as u32);
                                    self.bump();
                                }
                                _ => break,
                            }
                        }
                        out.push((v & 0xff) as u8);
                    }
                    Some('x') => {
                        let mut v = 0u32;
                        let mut n = 0;
                        while n < 2 {
                            match self.chars.peek().and_then(|c| c.to_digit(16)) {
                                Some(d) => {
                                    v = v * 16 + d;
                                    self.bump();
                                    n += 1;
                                }
                                None => break,
                            }
                        }
                        out.push(v as u8);
                    }
                    Some(o) => {
                        let mut buf = [0; 4];
                        out.extend_from_slice(o.encode_utf8(&mut buf).as_bytes());
                    }
                    None => {
                        return Err(SyntaxError {
                            at: at.clone(),
                            message: "unterminated quoted string".into(),
                        });
                    }
                },
                other => {
                    let mut buf = [0; 4];
                    out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }
}

/// Parses `text` (named `file` in positions) into statements, reading
/// `include "…";` through `include`.
pub fn parse(
    text: &str,
    file: &str,
    include: &mut IncludeReader<'_>,
) -> Result<Vec<Statement>, SyntaxError> {
    parse_depth(text, file, include, 0)
}

/// A block being read: the statement head waiting for it (none for the
/// file itself) and the statements read so far.
type OpenBlock = (Option<(Pos, Vec<Word>)>, Vec<Statement>);

fn parse_depth(
    text: &str,
    file: &str,
    include: &mut IncludeReader<'_>,
    depth: usize,
) -> Result<Vec<Statement>, SyntaxError> {
    let mut lx = Lexer {
        chars: text.chars().peekable(),
        file,
        line: 1,
        column: 1,
    };
    // Stack of open blocks: (statement waiting for its block, statements so far).
    let mut stack: Vec<OpenBlock> = vec![(None, Vec::new())];
    let mut words: Vec<Word> = Vec::new();
    let mut start: Option<Pos> = None;
    while let Some((at, tok)) = lx.next()? {
        match tok {
            Tok::Word(w) => {
                if start.is_none() {
                    start = Some(at);
                }
                words.push(w);
            }
            Tok::Semi => {
                let Some(s_at) = start.take() else { continue }; // stray `;` is harmless
                let ws = std::mem::take(&mut words);
                let top = &mut stack.last_mut().expect("root").1;
                if ws.len() == 2 && ws[0].is("include") {
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(SyntaxError {
                            at: s_at,
                            message: format!(
                                "includes nested more than {MAX_INCLUDE_DEPTH} deep (a loop?)"
                            ),
                        });
                    }
                    let target = ws[1].text();
                    let (name, sub) = include(&target).map_err(|e| SyntaxError {
                        at: s_at.clone(),
                        message: format!("include \"{target}\": {e}"),
                    })?;
                    let inner = parse_depth(&sub, &name, include, depth + 1)?;
                    stack.last_mut().expect("root").1.extend(inner);
                } else {
                    top.push(Statement {
                        at: s_at,
                        words: ws,
                        block: None,
                    });
                }
            }
            Tok::Open => {
                if stack.len() > MAX_BLOCK_DEPTH {
                    return Err(SyntaxError {
                        at,
                        message: format!("blocks nested more than {MAX_BLOCK_DEPTH} deep"),
                    });
                }
                let s_at = start.take().unwrap_or_else(|| at.clone());
                stack.push((Some((s_at, std::mem::take(&mut words))), Vec::new()));
            }
            Tok::Close => {
                if let Some(s_at) = start.take() {
                    return Err(SyntaxError {
                        at: s_at,
                        message: format!(
                            "missing ';' after \"{}\"",
                            words.iter().map(Word::text).collect::<Vec<_>>().join(" ")
                        ),
                    });
                }
                if stack.len() == 1 {
                    return Err(SyntaxError {
                        at,
                        message: "'}' without a matching '{'".into(),
                    });
                }
                let (head, body) = stack.pop().expect("len > 1");
                let (s_at, ws) = head.expect("only the root has no head");
                stack.last_mut().expect("root").1.push(Statement {
                    at: s_at,
                    words: ws,
                    block: Some(body),
                });
            }
        }
    }
    if let Some(s_at) = start {
        return Err(SyntaxError {
            at: s_at,
            message: "statement not ended by ';' at end of file".into(),
        });
    }
    if stack.len() > 1 {
        let (head, _) = stack.pop().expect("len > 1");
        let (s_at, _) = head.expect("block head");
        return Err(SyntaxError {
            at: s_at,
            message: "'{' not closed by '}' before end of file".into(),
        });
    }
    Ok(stack.pop().expect("root").1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_include(_: &str) -> Result<(String, String), String> {
        Err("no includes here".into())
    }

    #[test]
    fn statements_blocks_comments_strings() {
        let text = "# top\nauthoritative;\nsubnet 10.0.0.0 netmask 255.255.255.0 { # c\n  range 10.0.0.5 10.0.0.9;\n  option domain-name \"a;b # c\";\n}\n";
        let s = parse(text, "f.conf", &mut no_include).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].words, vec![Word::Bare("authoritative".into())]);
        assert_eq!((s[1].at.line, s[1].at.column), (3, 1));
        let block = s[1].block.as_ref().unwrap();
        assert_eq!(block[1].words[2], Word::Quoted(b"a;b # c".to_vec()));
        assert_eq!(block[0].at.to_string(), "f.conf:4:3");
    }

    #[test]
    fn octal_escapes_and_lists() {
        let s = parse(
            "uid \"\\001\\002\\003x\"; option a 1, 2;",
            "l",
            &mut no_include,
        )
        .unwrap();
        assert_eq!(s[0].words[1], Word::Quoted(vec![1, 2, 3, b'x']));
        assert_eq!(s[1].words.len(), 5);
    }

    #[test]
    fn includes_are_spliced_with_their_own_positions() {
        let mut reader = |name: &str| -> Result<(String, String), String> {
            assert_eq!(name, "inner.conf");
            Ok(("/etc/inner.conf".into(), "\n  max-lease-time 7;".into()))
        };
        let s = parse("a;\ninclude \"inner.conf\";\nb;", "main", &mut reader).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].at.to_string(), "/etc/inner.conf:2:3");
        let mut looping = |_: &str| -> Result<(String, String), String> {
            Ok(("x".into(), "include \"x\";".into()))
        };
        let e = parse("include \"x\";", "main", &mut looping).unwrap_err();
        assert!(e.message.contains("nested"), "{e}");
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("a {\n b;\n", "f", &mut no_include).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f:1:1: '{' not closed by '}' before end of file"
        );
        let e = parse("a { b }", "f", &mut no_include).unwrap_err();
        assert_eq!(e.to_string(), "f:1:5: missing ';' after \"b\"");
        let e = parse("x \"abc", "f", &mut no_include).unwrap_err();
        assert_eq!(e.to_string(), "f:1:3: unterminated quoted string");
        let e = parse("}", "f", &mut no_include).unwrap_err();
        assert!(e.message.contains("without"));
        assert!(parse(&"a {".repeat(100), "f", &mut no_include).is_err());
    }
}
