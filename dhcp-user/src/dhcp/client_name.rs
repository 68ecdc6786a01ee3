//! Option 81 (client FQDN, RFC 4702) as Kea 2.2 handles it with DNS
//! updates off: the name a client sends is sanitised and qualified by the
//! subnet's client-name parameters, stored as the lease's hostname and sent
//! back in option 81 with the server's flags. Pure: bytes and policy in,
//! bytes and a name out.
//!
//! Kea's steps, in its order (`Dhcpv4Srv::processClientFqdnOption`, then
//! `postAllocateNameUpdate`; `D2ClientMgr::adjustFqdnFlags`,
//! `adjustDomainName`, `qualifyName`, `generateFqdn`):
//! - flags: with updates off the server answers S=0, N=1, O=1 when the
//!   client had asked for S, and carries the client's E; RCODEs are echoed;
//! - name: a reserved hostname wins (qualified, full); else an empty name or
//!   `ddns-replace-client-name` `always`/`when-present` leaves it empty;
//!   else each label is sanitised (`hostname-char-set`) and a partial name
//!   is qualified with `ddns-qualifying-suffix` and made full;
//! - an empty name is generated from the leased address
//!   (`<ddns-generated-prefix>-a-b-c-d`, qualified) and such a lease is never
//!   reused by lease caching;
//! - the lease's hostname is the answer's name as text (a full name keeps
//!   its final dot, as Kea stores it).
//!
//! A malformed option 81 (truncated, N and S both set, a bad name) makes
//! Kea drop the whole packet; [`ClientFqdn::parse`] returns the reason.

use std::net::Ipv4Addr;

use crate::config::client_names::{NamePolicy, ReplaceClientName};

/// Flag bits of option 81.
const FLAG_S: u8 = 0x01;
const FLAG_O: u8 = 0x02;
const FLAG_E: u8 = 0x04;
const FLAG_N: u8 = 0x08;
/// Longest label and longest name on the wire (RFC 1035).
const MAX_LABEL: usize = 63;
const MAX_WIRE: usize = 255;

/// Why an option 81 is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FqdnError {
    /// Fewer than the three fixed bytes.
    #[error("client FQDN option truncated")]
    Truncated,
    /// RFC 4702 §2.1: N set requires S clear.
    #[error("client FQDN option has both N and S set")]
    BothNAndS,
    /// The domain name does not parse.
    #[error("client FQDN option domain name: {0}")]
    Name(&'static str),
}

/// A domain name as Kea's `isc::dns::Name` holds it: lower-cased labels,
/// and whether it is fully qualified (ends in the root label).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DomainName {
    labels: Vec<Vec<u8>>,
    full: bool,
}

impl DomainName {
    /// The canonical wire form of option 81 with E set: length-prefixed
    /// labels, a name without the terminating zero being partial. Kea reads
    /// up to the first zero label.
    pub fn from_wire(bytes: &[u8]) -> Result<Self, FqdnError> {
        if bytes.is_empty() {
            return Ok(DomainName::default());
        }
        let full = bytes.last() == Some(&0);
        let mut labels = Vec::new();
        let mut i = 0;
        let mut wire = 1;
        while i < bytes.len() {
            let len = bytes[i] as usize;
            if len == 0 {
                break;
            }
            if len > MAX_LABEL {
                return Err(FqdnError::Name("label longer than 63 octets or a compression pointer"));
            }
            let label = bytes.get(i + 1..i + 1 + len).ok_or(FqdnError::Name("label runs past the option"))?;
            wire += len + 1;
            if wire > MAX_WIRE {
                return Err(FqdnError::Name("longer than 255 octets"));
            }
            labels.push(label.to_ascii_lowercase());
            i += 1 + len;
        }
        Ok(DomainName { labels, full })
    }

    /// The text form (the deprecated ASCII encoding of option 81, and
    /// names from configuration): dot-separated labels with `\c` and
    /// `\DDD` escapes; a final dot makes it full.
    pub fn from_text(text: impl AsRef<[u8]>) -> Result<Self, FqdnError> {
        let b = text.as_ref();
        if b.is_empty() {
            return Ok(DomainName::default());
        }
        if b == b"." {
            return Ok(DomainName { labels: Vec::new(), full: true });
        }
        let mut labels = Vec::new();
        let mut label = Vec::new();
        let mut full = false;
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'.' => {
                    if label.is_empty() {
                        return Err(FqdnError::Name("empty label"));
                    }
                    labels.push(std::mem::take(&mut label));
                    if i + 1 == b.len() {
                        full = true;
                    }
                }
                b'\\' => {
                    let digits = b.get(i + 1..i + 4).filter(|d| d.iter().all(u8::is_ascii_digit));
                    if let Some(d) = digits {
                        let v = (d[0] - b'0') as u32 * 100 + (d[1] - b'0') as u32 * 10 + (d[2] - b'0') as u32;
                        label.push(u8::try_from(v).map_err(|_| FqdnError::Name("escape above 255"))?);
                        i += 3;
                    } else {
                        label.push(*b.get(i + 1).ok_or(FqdnError::Name("name ends in a backslash"))?);
                        i += 1;
                    }
                }
                c => label.push(c),
            }
            if label.len() > MAX_LABEL {
                return Err(FqdnError::Name("label longer than 63 octets"));
            }
            i += 1;
        }
        if !label.is_empty() {
            labels.push(label);
        }
        let name = DomainName { labels: labels.iter().map(|l| l.to_ascii_lowercase()).collect(), full };
        if name.wire_len() > MAX_WIRE {
            return Err(FqdnError::Name("longer than 255 octets"));
        }
        Ok(name)
    }

    fn wire_len(&self) -> usize {
        1 + self.labels.iter().map(|l| l.len() + 1).sum::<usize>()
    }

    /// Whether there is no name at all (Kea's null name).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && !self.full
    }

    /// Kea's `getDomainName`: the text form, a full name with its final
    /// dot; special and non-printable octets escaped as Kea escapes them.
    pub fn to_text(&self) -> String {
        if self.labels.is_empty() {
            return if self.full { ".".into() } else { String::new() };
        }
        let mut out = String::new();
        for (i, l) in self.labels.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            for &c in l {
                match c {
                    b'"' | b'(' | b')' | b'.' | b';' | b'\\' | b'@' | b'$' => {
                        out.push('\\');
                        out.push(c as char);
                    }
                    0x21..=0x7e => out.push(c as char),
                    _ => out.push_str(&format!("\\{c:03}")),
                }
            }
        }
        if self.full {
            out.push('.');
        }
        out
    }

    /// The labels as raw text (no escapes), for sanitising label by label.
    fn raw_labels(&self) -> Vec<String> {
        self.labels.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect()
    }

    fn put_wire(&self, out: &mut Vec<u8>) {
        for l in &self.labels {
            out.push(l.len() as u8);
            out.extend_from_slice(l);
        }
        if self.full {
            out.push(0);
        }
    }
}

/// A decoded option 81.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFqdn {
    /// Flags octet (S, O, E, N and the must-be-zero bits).
    pub flags: u8,
    /// RCODE1, RCODE2.
    pub rcodes: [u8; 2],
    /// The domain name.
    pub name: DomainName,
}

impl ClientFqdn {
    /// Decodes option 81's value as Kea does (must-be-zero bits ignored).
    pub fn parse(v: &[u8]) -> Result<Self, FqdnError> {
        let [flags, r1, r2, rest @ ..] = v else { return Err(FqdnError::Truncated) };
        if flags & (FLAG_N | FLAG_S) == FLAG_N | FLAG_S {
            return Err(FqdnError::BothNAndS);
        }
        let name = if flags & FLAG_E != 0 {
            DomainName::from_wire(rest)?
        } else {
            DomainName::from_text(rest)?
        };
        Ok(ClientFqdn { flags: *flags, rcodes: [*r1, *r2], name })
    }

    /// The option's value: flags, RCODEs, the name in the encoding E says.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.flags, self.rcodes[0], self.rcodes[1]];
        if self.flags & FLAG_E != 0 {
            self.name.put_wire(&mut out);
        } else {
            out.extend_from_slice(self.to_text_name().as_bytes());
        }
        out
    }

    fn to_text_name(&self) -> String {
        self.name.to_text()
    }
}

/// What option 81 makes of a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FqdnAnswer {
    /// Option 81 for the reply.
    pub option: ClientFqdn,
    /// The lease's hostname.
    pub hostname: String,
    /// The name was generated from the address: Kea never reuses such a
    /// lease through lease caching.
    pub generated: bool,
}

/// Kea's answer to `fqdn` for a grant of `address` in a subnet with
/// `policy`; `reserved` is the client's reserved hostname, if any. `None`
/// where Kea's name processing fails (a sanitised name that is no longer a
/// name): no option 81 then, and no hostname.
pub fn answer(fqdn: &ClientFqdn, reserved: Option<&str>, policy: &NamePolicy, address: Ipv4Addr) -> Option<FqdnAnswer> {
    // Updates are off: S=0, N=1, O when the client's S was overridden.
    let mut flags = FLAG_N | (fqdn.flags & FLAG_E);
    if fqdn.flags & FLAG_S != 0 {
        flags |= FLAG_O;
    }
    let name = match reserved.filter(|r| !r.is_empty()) {
        Some(r) => full_name(&qualify(r, &policy.qualifying_suffix, true))?,
        None if matches!(policy.replace, ReplaceClientName::Always | ReplaceClientName::WhenPresent)
            || fqdn.name.is_empty() =>
        {
            DomainName::default()
        }
        None => {
            let labels = fqdn.name.raw_labels();
            let mut text = labels
                .iter()
                .map(|l| policy.sanitizer.as_ref().map_or_else(|| l.clone(), |s| s.scrub(l)))
                .collect::<Vec<_>>()
                .join(".");
            if fqdn.name.full {
                text.push('.');
                full_name(&text)?
            } else {
                full_name(&qualify(&text, &policy.qualifying_suffix, true))?
            }
        }
    };
    let mut option = ClientFqdn { flags, rcodes: fqdn.rcodes, name };
    let mut generated = false;
    if option.name.is_empty() {
        let dashed = address.to_string().replace('.', "-");
        option.name = full_name(&qualify(&format!("{}-{dashed}", policy.generated_prefix), &policy.qualifying_suffix, true))?;
        generated = true;
    }
    let hostname = option.name.to_text();
    Some(FqdnAnswer { option, hostname, generated })
}

/// `text` as a full name (Kea's `setDomainName(…, FULL)`, which refuses
/// an empty one).
fn full_name(text: &str) -> Option<DomainName> {
    let mut n = DomainName::from_text(text).ok()?;
    if n.is_empty() {
        return None;
    }
    n.full = true;
    Some(n)
}

/// Kea's `qualifyName`: `name` with `suffix` appended unless it already
/// ends with it (as whole labels), then with or without a final dot.
pub fn qualify(name: &str, suffix: &str, trailing_dot: bool) -> String {
    let mut out = name.to_string();
    let bare_suffix = suffix.strip_suffix('.').unwrap_or(suffix);
    if !suffix.is_empty() {
        let bare_name = name.strip_suffix('.').unwrap_or(name);
        let present = bare_name.ends_with(bare_suffix)
            && (bare_name.len() == bare_suffix.len()
                || bare_name.as_bytes()[bare_name.len() - bare_suffix.len() - 1] == b'.');
        if !present {
            if !out.is_empty() && !out.ends_with('.') {
                out.push('.');
            }
            out.push_str(suffix);
        }
    }
    match (trailing_dot, out.ends_with('.')) {
        (true, false) if !out.is_empty() => out.push('.'),
        (false, true) => {
            out.pop();
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(replace: ReplaceClientName, suffix: &str) -> NamePolicy {
        NamePolicy { replace, qualifying_suffix: suffix.into(), ..NamePolicy::default() }
    }
    const A: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 10);

    #[test]
    fn ascii_and_canonical_names_parse_as_kea_reads_them() {
        let f = ClientFqdn::parse(b"\x01\x00\x00Abc").unwrap();
        assert_eq!((f.flags, f.name.to_text()), (FLAG_S, "abc".to_string()), "partial, lower-cased");
        let f = ClientFqdn::parse(b"\x01\xff\xffhost.Example.com.").unwrap();
        assert_eq!(f.name.to_text(), "host.example.com.");
        let f = ClientFqdn::parse(b"\x04\x00\x00\x04host\x07example\x03com\x00").unwrap();
        assert_eq!(f.name.to_text(), "host.example.com.");
        let f = ClientFqdn::parse(b"\x04\x00\x00\x04host").unwrap();
        assert_eq!(f.name.to_text(), "host", "no terminating zero: partial");
        assert_eq!(ClientFqdn::parse(b"\x00\x00\x00").unwrap().name, DomainName::default());
    }

    #[test]
    fn malformed_options_are_refused() {
        assert_eq!(ClientFqdn::parse(b"\x01\x00"), Err(FqdnError::Truncated));
        assert_eq!(ClientFqdn::parse(b"\x09\x00\x00a"), Err(FqdnError::BothNAndS));
        assert!(ClientFqdn::parse(b"\x04\x00\x00\x40aaaa").is_err(), "64-octet label");
        assert!(ClientFqdn::parse(b"\x04\x00\x00\xc0\x0c").is_err(), "compression pointer");
        assert!(ClientFqdn::parse(b"\x04\x00\x00\x05ab").is_err(), "label past the end");
        assert!(ClientFqdn::parse(b"\x00\x00\x00a..b").is_err(), "empty label");
        let long = format!("\x00\x00\x00{}", vec!["a".repeat(63); 5].join("."));
        assert!(ClientFqdn::parse(long.as_bytes()).is_err(), "over 255 octets");
    }

    #[test]
    fn encoding_round_trips_both_forms() {
        for v in [&b"\x05\x00\x00\x04host\x07example\x03com\x00"[..], b"\x04\xff\xff\x04host", b"\x01\x00\x00host.example.com."] {
            assert_eq!(ClientFqdn::parse(v).unwrap().encode(), v);
        }
    }

    #[test]
    fn a_partial_name_is_qualified_and_stored_full() {
        let f = ClientFqdn::parse(b"\x01\x00\x00abc").unwrap();
        let a = answer(&f, None, &NamePolicy::default(), A).unwrap();
        assert_eq!(a.option.flags, FLAG_N | FLAG_O, "updates off: N, and O since the client asked for S");
        assert_eq!((a.hostname.as_str(), a.generated), ("abc.", false));
        assert_eq!(a.option.encode(), b"\x0a\x00\x00abc.");
        let a = answer(&f, None, &policy(ReplaceClientName::Never, "example.com"), A).unwrap();
        assert_eq!(a.hostname, "abc.example.com.");
    }

    #[test]
    fn flags_follow_kea_with_updates_off() {
        let flags = |client: u8| {
            let f = ClientFqdn::parse(&[client, 0, 0, 1, b'a']).unwrap();
            answer(&f, None, &NamePolicy::default(), A).unwrap().option.flags
        };
        assert_eq!(flags(0), FLAG_N);
        assert_eq!(flags(FLAG_N), FLAG_N);
        assert_eq!(flags(FLAG_S | FLAG_E), FLAG_N | FLAG_O | FLAG_E);
    }

    #[test]
    fn names_are_sanitised_label_by_label() {
        let f = ClientFqdn::parse(b"\x00\x00\x00my_host.ex!ample.").unwrap();
        assert_eq!(answer(&f, None, &NamePolicy::default(), A).unwrap().hostname, "myhost.example.");
        // A label scrubbed to nothing is no name: Kea's processing fails.
        let f = ClientFqdn::parse(b"\x00\x00\x00a.___.").unwrap();
        assert_eq!(answer(&f, None, &NamePolicy::default(), A), None);
    }

    #[test]
    fn empty_or_replaced_names_are_generated_from_the_address() {
        let empty = ClientFqdn::parse(b"\x01\x00\x00").unwrap();
        let a = answer(&empty, None, &policy(ReplaceClientName::Never, "lan."), A).unwrap();
        assert_eq!((a.hostname.as_str(), a.generated), ("myhost-192-168-50-10.lan.", true));
        let named = ClientFqdn::parse(b"\x01\x00\x00abc").unwrap();
        assert!(answer(&named, None, &policy(ReplaceClientName::Always, ""), A).unwrap().generated);
        assert!(!answer(&named, None, &policy(ReplaceClientName::WhenNotPresent, ""), A).unwrap().generated);
    }

    #[test]
    fn a_reserved_hostname_wins() {
        let f = ClientFqdn::parse(b"\x01\x00\x00abc").unwrap();
        let a = answer(&f, Some("Mutante3"), &policy(ReplaceClientName::Never, "example.org"), A).unwrap();
        assert_eq!(a.hostname, "mutante3.example.org.");
    }

    #[test]
    fn qualify_matches_kea() {
        assert_eq!(qualify("abc", "", true), "abc.");
        assert_eq!(qualify("abc.", "", false), "abc");
        assert_eq!(qualify("abc", "example.com", false), "abc.example.com");
        assert_eq!(qualify("abc.example.com", "example.com.", true), "abc.example.com.");
        assert_eq!(qualify("foo.barexample.com", "example.com", false), "foo.barexample.com.example.com");
    }
}
