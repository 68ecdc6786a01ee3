//! Kea's expression tokens (`src/lib/eval/lexer.ll` in Kea 2.2): quoted
//! strings, `0x` hex strings, integers, IPv4/IPv6 addresses, option names
//! (a name followed by `]`), keywords and punctuation. Each token keeps the
//! 1-based column it starts at, so the parser can name where an error is.

use std::fmt;

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// `'text'`: the text between the quotes.
    Str(String),
    /// `0x…`: the hex digits after `0x`.
    Hex(String),
    /// `-?[0-9]+`, as written (range checks are the parser's).
    Int(i64),
    /// An IPv4 or IPv6 address literal, as bytes (4 or 16).
    Addr(Vec<u8>),
    /// A name inside `[ ]`: `option[host-name]`.
    OptionName(String),
    /// A keyword (`option`, `substring`, `mac`…).
    Kw(Kw),
    /// `( ) [ ] . , * + ==`.
    Punct(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Str(s) => write!(f, "constant string '{s}'"),
            Tok::Hex(h) => write!(f, "constant hexstring 0x{h}"),
            Tok::Int(i) => write!(f, "integer {i}"),
            Tok::Addr(_) => write!(f, "ip address"),
            Tok::OptionName(n) => write!(f, "option name {n}"),
            Tok::Kw(k) => write!(f, "\"{}\"", k.text()),
            Tok::Punct(p) => write!(f, "\"{p}\""),
        }
    }
}

macro_rules! keywords {
    ($($v:ident = $t:literal),* $(,)?) => {
        /// Kea's reserved words.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Kw { $($v),* }
        impl Kw {
            /// The keyword as written.
            pub fn text(self) -> &'static str {
                match self { $(Kw::$v => $t),* }
            }
            fn from_text(s: &str) -> Option<Kw> {
                match s { $($t => Some(Kw::$v),)* _ => None }
            }
        }
    };
}

keywords! {
    Not = "not", And = "and", Or = "or", Option = "option", Relay4 = "relay4", Relay6 = "relay6",
    Member = "member", PeerAddr = "peeraddr", LinkAddr = "linkaddr", Text = "text", HexRepr = "hex",
    Exists = "exists", Pkt = "pkt", Iface = "iface", Src = "src", Dst = "dst", Len = "len", Pkt4 = "pkt4",
    Mac = "mac", Hlen = "hlen", Htype = "htype", Ciaddr = "ciaddr", Giaddr = "giaddr", Yiaddr = "yiaddr",
    Siaddr = "siaddr", Substring = "substring", Split = "split", All = "all", Concat = "concat",
    IfElse = "ifelse", HexString = "hexstring", AddrToText = "addrtotext", Int8ToText = "int8totext",
    Int16ToText = "int16totext", Int32ToText = "int32totext", Uint8ToText = "uint8totext",
    Uint16ToText = "uint16totext", Uint32ToText = "uint32totext", Pkt6 = "pkt6", MsgType = "msgtype",
    TransId = "transid", VendorClass = "vendor-class", Vendor = "vendor", Data = "data",
    Enterprise = "enterprise",
}

/// A token and the column (1-based, in characters) where it starts.
pub type Spanned = (Tok, usize);

/// Why the text could not be cut into tokens, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// 1-based column.
    pub column: usize,
    /// What is wrong there.
    pub message: String,
}

/// Cuts `text` into tokens, or names the first character Kea's lexer
/// refuses.
pub fn tokens(text: &str) -> Result<Vec<Spanned>, LexError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |column: usize, message: String| LexError { column, message };
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
            i += 1;
            continue;
        }
        if c == '\'' {
            let end = chars[i + 1..].iter().position(|&c| c == '\'' || c == '\n');
            match end {
                Some(n) if chars[i + 1 + n] == '\'' => {
                    out.push((Tok::Str(chars[i + 1..i + 1 + n].iter().collect()), col));
                    i += n + 2;
                    continue;
                }
                _ => return Err(err(col, "unterminated string (a quote ' is missing)".into())),
            }
        }
        if c == '=' {
            if chars.get(i + 1) == Some(&'=') {
                out.push((Tok::Punct("=="), col));
                i += 2;
                continue;
            }
            return Err(err(col, "invalid character: =".into()));
        }
        if let Some(p) = ["(", ")", "[", "]", ".", ",", "*", "+"].iter().find(|p| p.starts_with(c)) {
            out.push((Tok::Punct(p), col));
            i += 1;
            continue;
        }
        // The longest of: an IPv6 address, a hex string, an IPv4 address,
        // an integer, a name (flex's longest-match rule).
        let run = |ok: &dyn Fn(char) -> bool| chars[i..].iter().take_while(|&&c| ok(c)).count();
        let v6 = run(&|c: char| c.is_ascii_hexdigit() || c == ':' || c == '.');
        let colons = chars[i..i + v6].iter().filter(|&&c| c == ':').count();
        let name_len = if c.is_ascii_alphabetic() { run(&|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_') } else { 0 };
        if colons >= 2 && v6 > name_len {
            let s: String = chars[i..i + v6].iter().collect();
            let a: std::net::Ipv6Addr = s.parse().map_err(|_| err(col, format!("failed to convert {s} to an IP address")))?;
            out.push((Tok::Addr(a.octets().to_vec()), col));
            i += v6;
            continue;
        }
        if c == '0' && matches!(chars.get(i + 1), Some('x' | 'X')) && chars.get(i + 2).is_some_and(char::is_ascii_hexdigit) {
            let n = chars[i + 2..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
            out.push((Tok::Hex(chars[i + 2..i + 2 + n].iter().collect()), col));
            i += 2 + n;
            continue;
        }
        if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let v4 = run(&|c: char| c.is_ascii_digit() || c == '.');
            let text: String = chars[i..i + v4].iter().collect();
            let parts: Vec<&str> = text.split('.').collect();
            if c != '-' && parts.len() >= 4 && parts[..4].iter().all(|p| !p.is_empty()) {
                let s = parts[..4].join(".");
                let a: std::net::Ipv4Addr = s.parse().map_err(|_| err(col, format!("failed to convert {s} to an IP address")))?;
                out.push((Tok::Addr(a.octets().to_vec()), col));
                i += s.chars().count();
                continue;
            }
            let start = i + usize::from(c == '-');
            let digits = chars[start..].iter().take_while(|c| c.is_ascii_digit()).count();
            let s: String = chars[i..start + digits].iter().collect();
            let n: i64 = s.parse().map_err(|_| err(col, format!("failed to convert {s} to an integer")))?;
            out.push((Tok::Int(n), col));
            i = start + digits;
            continue;
        }
        if name_len > 0 {
            let mut word: String = chars[i..i + name_len].iter().collect();
            let next = chars[i + name_len..].iter().find(|c| !matches!(c, ' ' | '\t' | '\n' | '\r'));
            if next == Some(&']') {
                // An option name ends in a letter or digit.
                let trimmed = word.trim_end_matches(['-', '_']).len();
                if trimmed != word.len() {
                    return Err(err(col + trimmed, format!("invalid character: {}", chars[i + trimmed])));
                }
                out.push((Tok::OptionName(word), col));
                i += name_len;
                continue;
            }
            // A keyword, possibly followed by characters a name allows
            // (flex matches the keyword, then trips over the rest).
            while !word.is_empty() {
                if let Some(k) = Kw::from_text(&word) {
                    out.push((Tok::Kw(k), col));
                    i += word.chars().count();
                    break;
                }
                word.pop();
            }
            if word.is_empty() {
                return Err(err(col, format!("invalid character: {c}")));
            }
            continue;
        }
        return Err(err(col, format!("invalid character: {c}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokens(s).unwrap().into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn cuts_kea_examples() {
        assert_eq!(
            toks("option[123].text == 'foo'"),
            [
                Tok::Kw(Kw::Option),
                Tok::Punct("["),
                Tok::Int(123),
                Tok::Punct("]"),
                Tok::Punct("."),
                Tok::Kw(Kw::Text),
                Tok::Punct("=="),
                Tok::Str("foo".into())
            ]
        );
        assert_eq!(toks("option[host-name ]")[2], Tok::OptionName("host-name".into()));
        assert_eq!(toks("0x0a1"), [Tok::Hex("0a1".into())]);
        assert_eq!(toks("10.0.0.1"), [Tok::Addr(vec![10, 0, 0, 1])]);
        assert_eq!(toks("2001:db8::1")[0], Tok::Addr("2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets().to_vec()));
        assert_eq!(toks("substring('abc', -1, all)")[4], Tok::Int(-1));
        assert_eq!(toks("vendor-class[*].exists")[0], Tok::Kw(Kw::VendorClass));
        assert_eq!(toks("vendor[4491].exists")[0], Tok::Kw(Kw::Vendor));
    }

    #[test]
    fn names_the_column_of_bad_characters() {
        assert_eq!(tokens("pkt4.mac == $").unwrap_err().column, 13);
        assert_eq!(tokens("'abc").unwrap_err().column, 1);
        assert_eq!(tokens("a = b").unwrap_err().column, 1);
        assert_eq!(tokens("999.1.1.1").unwrap_err().column, 1);
    }
}
