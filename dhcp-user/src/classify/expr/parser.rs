//! Kea 2.2's expression grammar (`src/lib/eval/parser.yy`), by recursive
//! descent: `or` binds loosest, then `and`, then `not`; `==` compares two
//! string expressions; `+` concatenates strings. DHCPv6-only forms
//! (`relay6`, `pkt6`) are refused as Kea's DHCPv4 parser refuses them.
//! Errors name the column of the token at fault.

use super::ast::{Bool, IntKind, Length, Pkt4Field, PktField, Repr, Source, Str};
use super::lexer::{self, Kw, Spanned, Tok};

/// What the parser needs from the configuration around the expression.
pub trait Context {
    /// The code of the `dhcp4` option called `name` (standard, then the
    /// global `option-def`s), if any.
    fn option_code(&self, name: &str) -> Option<u8>;
    /// Whether option `code` is a string option (Kea's `OptionString`).
    fn is_string_option(&self, code: u8) -> bool;
    /// For `member('name')`: `None` if no such class is defined before
    /// this one (or built in), else whether it depends on KNOWN/UNKNOWN.
    fn class(&self, name: &str) -> Option<bool>;
}

/// A parsed `test`: the tree, and whether it depends on KNOWN/UNKNOWN
/// (directly or through `member` of a class that does), which decides
/// when Kea evaluates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The expression.
    pub expr: Bool,
    /// Depends on the host reservation lookup.
    pub depends_on_known: bool,
}

/// Why an expression was refused, and the column (1-based) at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    /// 1-based column in the expression.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses a boolean expression (a class `test`).
pub fn parse_bool(text: &str, cx: &dyn Context) -> Result<Parsed, ParseError> {
    let toks = lexer::tokens(text).map_err(|e| ParseError { column: e.column, message: e.message })?;
    let end = text.chars().count() + 1;
    let mut p = Parser { toks, pos: 0, end, cx, depends_on_known: false };
    let expr = p.or()?;
    if let Some((t, c)) = p.toks.get(p.pos) {
        return Err(ParseError { column: *c, message: format!("syntax error, unexpected {t}, expecting end of expression") });
    }
    Ok(Parsed { expr, depends_on_known: p.depends_on_known })
}

/// Parses a string expression (the flex-option hook's values).
pub fn parse_string(text: &str, cx: &dyn Context) -> Result<Str, ParseError> {
    let toks = lexer::tokens(text).map_err(|e| ParseError { column: e.column, message: e.message })?;
    let end = text.chars().count() + 1;
    let mut p = Parser { toks, pos: 0, end, cx, depends_on_known: false };
    let expr = p.string()?;
    if let Some((t, c)) = p.toks.get(p.pos) {
        return Err(ParseError { column: *c, message: format!("syntax error, unexpected {t}, expecting end of expression") });
    }
    Ok(expr)
}

struct Parser<'a> {
    toks: Vec<Spanned>,
    pos: usize,
    end: usize,
    cx: &'a dyn Context,
    depends_on_known: bool,
}

/// What an operand turned out to be.
enum Atom {
    Bool(Bool),
    Str(Str),
}

type R<T> = Result<T, ParseError>;

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn column(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(_, c)| *c)
    }

    fn fail<T>(&self, expecting: &str) -> R<T> {
        let message = match self.peek() {
            Some(t) => format!("syntax error, unexpected {t}, expecting {expecting}"),
            None => format!("syntax error, unexpected end of expression, expecting {expecting}"),
        };
        Err(ParseError { column: self.column(), message })
    }

    fn error<T>(&self, column: usize, message: impl Into<String>) -> R<T> {
        Err(ParseError { column, message: message.into() })
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(q)) if *q == p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn punct(&mut self, p: &str) -> R<()> {
        if self.eat_punct(p) { Ok(()) } else { self.fail(&format!("\"{p}\"")) }
    }

    fn eat_kw(&mut self, k: Kw) -> bool {
        if self.peek() == Some(&Tok::Kw(k)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn kw(&mut self, k: Kw) -> R<()> {
        if self.eat_kw(k) { Ok(()) } else { self.fail(&format!("\"{}\"", k.text())) }
    }

    fn int(&mut self) -> R<(i64, usize)> {
        match self.peek() {
            Some(&Tok::Int(n)) => {
                let c = self.column();
                self.pos += 1;
                Ok((n, c))
            }
            _ => self.fail("integer"),
        }
    }

    fn or(&mut self) -> R<Bool> {
        let mut left = self.and()?;
        while self.eat_kw(Kw::Or) {
            let right = self.and()?;
            left = Bool::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> R<Bool> {
        let mut left = self.unary()?;
        while self.eat_kw(Kw::And) {
            let right = self.unary()?;
            left = Bool::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> R<Bool> {
        if self.eat_kw(Kw::Not) {
            return Ok(Bool::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::Punct("(")) {
            // `( bool )` or a parenthesised string operand of `==`: try the
            // boolean reading first, as bison's grammar accepts either.
            let start = self.pos;
            let saved = self.depends_on_known;
            self.pos += 1;
            if let Ok(b) = self.or()
                && self.eat_punct(")")
                && !matches!(self.peek(), Some(Tok::Punct("==" | "+")))
            {
                return Ok(b);
            }
            self.pos = start;
            self.depends_on_known = saved;
        }
        let column = self.column();
        let atom = if self.peek() == Some(&Tok::Punct("(")) { Atom::Str(self.string_operand(column)?) } else { self.operand()? };
        match atom {
            Atom::Bool(b) => Ok(b),
            Atom::Str(left) => {
                let left = self.concat_rest(left)?;
                if !self.eat_punct("==") {
                    return self.fail("\"==\"");
                }
                let right = self.string()?;
                Ok(Bool::Equal(Box::new(left), Box::new(right)))
            }
        }
    }

    /// A string expression, `+` included.
    fn string(&mut self) -> R<Str> {
        let column = self.column();
        let first = self.string_operand(column)?;
        self.concat_rest(first)
    }

    fn concat_rest(&mut self, mut left: Str) -> R<Str> {
        while self.eat_punct("+") {
            let column = self.column();
            let right = self.string_operand(column)?;
            left = Str::Concat(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn string_operand(&mut self, column: usize) -> R<Str> {
        if self.eat_punct("(") {
            let s = self.string()?;
            self.punct(")")?;
            return Ok(s);
        }
        match self.operand()? {
            Atom::Str(s) => Ok(s),
            Atom::Bool(_) => self.error(column, "syntax error: a boolean where a string is expected"),
        }
    }

    fn option_code(&mut self) -> R<u8> {
        let column = self.column();
        match self.peek().cloned() {
            Some(Tok::Int(n)) => {
                self.pos += 1;
                u8::try_from(n).or_else(|_| self.error(column, format!("Option code has invalid value in {n}. Allowed range: 0..255")))
            }
            Some(Tok::OptionName(name)) => {
                self.pos += 1;
                match self.cx.option_code(&name) {
                    Some(c) => Ok(c),
                    None => self.error(column, format!("option '{name}' is not defined")),
                }
            }
            _ => self.fail("integer or option name"),
        }
    }

    fn sub_code(&mut self) -> R<u8> {
        let (n, column) = self.int()?;
        u8::try_from(n).or_else(|_| self.error(column, format!("Option code has invalid value in {n}. Allowed range: 0..255")))
    }

    fn enterprise(&mut self) -> R<u32> {
        if self.eat_punct("*") {
            return Ok(0);
        }
        let (n, column) = self.int()?;
        u32::try_from(n).or_else(|_| self.error(column, format!("Invalid value in {n}. Allowed range: 0..4294967295")))
    }

    /// `.text`, `.hex` or `.exists` after an option reference.
    fn option_tail(&mut self, src: Source) -> R<Atom> {
        if self.eat_kw(Kw::Exists) {
            return Ok(Atom::Bool(Bool::Exists(src)));
        }
        if self.eat_kw(Kw::Text) {
            return Ok(Atom::Str(Str::Option(src, Repr::Text)));
        }
        if self.eat_kw(Kw::HexRepr) {
            return Ok(Atom::Str(Str::Option(src, Repr::Hex)));
        }
        self.fail("\"text\", \"hex\" or \"exists\"")
    }

    fn one_arg(&mut self) -> R<Str> {
        self.punct("(")?;
        let s = self.string()?;
        self.punct(")")?;
        Ok(s)
    }

    fn operand(&mut self) -> R<Atom> {
        let column = self.column();
        let Some(tok) = self.peek().cloned() else { return self.fail("an expression") };
        self.pos += 1;
        let s = |s: Str| Ok(Atom::Str(s));
        match tok {
            Tok::Str(t) => s(Str::Literal(t.into_bytes())),
            Tok::Hex(h) => s(Str::Literal(hex_literal(&h))),
            Tok::Addr(a) => s(Str::Literal(a)),
            Tok::Int(n) => match u32::try_from(n) {
                Ok(v) => s(Str::Literal(v.to_be_bytes().to_vec())),
                Err(_) => self.error(column, format!("Invalid value in {n}. Allowed range: 0..4294967295")),
            },
            Tok::Kw(Kw::Option) => {
                self.punct("[")?;
                let code = self.option_code()?;
                self.punct("]")?;
                self.punct(".")?;
                if self.eat_kw(Kw::Option) {
                    self.punct("[")?;
                    let sub = self.sub_code()?;
                    self.punct("]")?;
                    self.punct(".")?;
                    return self.option_tail(Source::SubOption { code, sub });
                }
                let string = self.cx.is_string_option(code);
                self.option_tail(Source::Option { code, string })
            }
            Tok::Kw(Kw::Relay4) => {
                self.punct("[")?;
                let sub = self.sub_code()?;
                self.punct("]")?;
                self.punct(".")?;
                self.option_tail(Source::Relay4(sub))
            }
            Tok::Kw(Kw::Relay6) => self.error(column, "relay6 can only be used in DHCPv6."),
            Tok::Kw(Kw::Pkt6) => self.error(column, "pkt6 can only be used in DHCPv6."),
            Tok::Kw(Kw::Member) => {
                self.punct("(")?;
                let c = self.column();
                let Some(Tok::Str(name)) = self.peek().cloned() else { return self.fail("constant string") };
                self.pos += 1;
                self.punct(")")?;
                match self.cx.class(&name) {
                    Some(dep) => {
                        self.depends_on_known |= dep;
                        Ok(Atom::Bool(Bool::Member(name)))
                    }
                    None => self.error(c, format!("Not defined client class '{name}'")),
                }
            }
            Tok::Kw(Kw::Vendor) => {
                if self.eat_punct(".") {
                    self.kw(Kw::Enterprise)?;
                    return s(Str::VendorEnterprise);
                }
                self.punct("[")?;
                let e = self.enterprise()?;
                self.punct("]")?;
                self.punct(".")?;
                if self.eat_kw(Kw::Exists) {
                    return Ok(Atom::Bool(Bool::VendorExists(e)));
                }
                self.kw(Kw::Option)?;
                self.punct("[")?;
                let sub = self.sub_code()?;
                self.punct("]")?;
                self.punct(".")?;
                self.option_tail(Source::VendorOption { enterprise: e, sub })
            }
            Tok::Kw(Kw::VendorClass) => {
                if self.eat_punct(".") {
                    self.kw(Kw::Enterprise)?;
                    return s(Str::VendorClassEnterprise);
                }
                self.punct("[")?;
                let e = self.enterprise()?;
                self.punct("]")?;
                self.punct(".")?;
                if self.eat_kw(Kw::Exists) {
                    return Ok(Atom::Bool(Bool::VendorClassExists(e)));
                }
                self.kw(Kw::Data)?;
                let mut index = 0;
                if self.eat_punct("[") {
                    let (n, c) = self.int()?;
                    index = u8::try_from(n).or_else(|_| self.error(c, format!("Invalid value in {n}. Allowed range: 0..255")))?;
                    self.punct("]")?;
                }
                s(Str::VendorClassData(e, index))
            }
            Tok::Kw(Kw::Pkt) => {
                self.punct(".")?;
                let f = match self.peek() {
                    Some(Tok::Kw(Kw::Iface)) => PktField::Iface,
                    Some(Tok::Kw(Kw::Src)) => PktField::Src,
                    Some(Tok::Kw(Kw::Dst)) => PktField::Dst,
                    Some(Tok::Kw(Kw::Len)) => PktField::Len,
                    _ => return self.fail("\"iface\", \"src\", \"dst\" or \"len\""),
                };
                self.pos += 1;
                s(Str::Pkt(f))
            }
            Tok::Kw(Kw::Pkt4) => {
                self.punct(".")?;
                let f = match self.peek() {
                    Some(Tok::Kw(Kw::Mac)) => Pkt4Field::Mac,
                    Some(Tok::Kw(Kw::Hlen)) => Pkt4Field::Hlen,
                    Some(Tok::Kw(Kw::Htype)) => Pkt4Field::Htype,
                    Some(Tok::Kw(Kw::Ciaddr)) => Pkt4Field::Ciaddr,
                    Some(Tok::Kw(Kw::Giaddr)) => Pkt4Field::Giaddr,
                    Some(Tok::Kw(Kw::Yiaddr)) => Pkt4Field::Yiaddr,
                    Some(Tok::Kw(Kw::Siaddr)) => Pkt4Field::Siaddr,
                    Some(Tok::Kw(Kw::MsgType)) => Pkt4Field::MsgType,
                    Some(Tok::Kw(Kw::TransId)) => Pkt4Field::TransId,
                    _ => return self.fail("a pkt4 field"),
                };
                self.pos += 1;
                s(Str::Pkt4(f))
            }
            Tok::Kw(Kw::Substring) => {
                self.punct("(")?;
                let text = self.string()?;
                self.punct(",")?;
                let (start, _) = self.int()?;
                self.punct(",")?;
                let len = if self.eat_kw(Kw::All) { Length::All } else { Length::N(self.int()?.0) };
                self.punct(")")?;
                s(Str::Substring(Box::new(text), start, len))
            }
            Tok::Kw(Kw::Split) => {
                self.punct("(")?;
                let text = self.string()?;
                self.punct(",")?;
                let delims = self.string()?;
                self.punct(",")?;
                let (field, _) = self.int()?;
                self.punct(")")?;
                s(Str::Split(Box::new(text), Box::new(delims), field))
            }
            Tok::Kw(Kw::Concat) => {
                self.punct("(")?;
                let a = self.string()?;
                self.punct(",")?;
                let b = self.string()?;
                self.punct(")")?;
                s(Str::Concat(Box::new(a), Box::new(b)))
            }
            Tok::Kw(Kw::IfElse) => {
                self.punct("(")?;
                let c = self.or()?;
                self.punct(",")?;
                let a = self.string()?;
                self.punct(",")?;
                let b = self.string()?;
                self.punct(")")?;
                s(Str::IfElse(Box::new(c), Box::new(a), Box::new(b)))
            }
            Tok::Kw(Kw::HexString) => {
                self.punct("(")?;
                let a = self.string()?;
                self.punct(",")?;
                let b = self.string()?;
                self.punct(")")?;
                s(Str::HexString(Box::new(a), Box::new(b)))
            }
            Tok::Kw(Kw::AddrToText) => s(Str::AddrToText(Box::new(self.one_arg()?))),
            Tok::Kw(k @ (Kw::Int8ToText | Kw::Int16ToText | Kw::Int32ToText | Kw::Uint8ToText | Kw::Uint16ToText | Kw::Uint32ToText)) => {
                let kind = match k {
                    Kw::Int8ToText => IntKind::I8,
                    Kw::Int16ToText => IntKind::I16,
                    Kw::Int32ToText => IntKind::I32,
                    Kw::Uint8ToText => IntKind::U8,
                    Kw::Uint16ToText => IntKind::U16,
                    _ => IntKind::U32,
                };
                s(Str::IntToText(kind, Box::new(self.one_arg()?)))
            }
            _ => {
                self.pos -= 1;
                self.fail("an expression")
            }
        }
    }
}

/// Kea's `TokenHexString`: an odd number of digits gets a leading 0.
fn hex_literal(digits: &str) -> Vec<u8> {
    let padded = if digits.len() % 2 == 1 { format!("0{digits}") } else { digits.to_owned() };
    (0..padded.len()).step_by(2).filter_map(|i| u8::from_str_radix(&padded[i..i + 2], 16).ok()).collect()
}
