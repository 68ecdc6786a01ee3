//! dhcpd.leases → leases for our store (Kea memfile CSV).
//!
//! dhcpd.leases is an append log: a lease appears again each time it
//! changes, so the last entry for an address is its state. Only leases in
//! `binding state active` are imported — they are the ones clients hold; free,
//! expired, released, abandoned and backup entries are counted and skipped,
//! as Kea would otherwise treat them as held. `ends` is kept as the expiry
//! (and `ends - starts` as the lifetime), so no client loses its lease time
//! in the migration.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use crate::config::Cidr;
use crate::leases::{ClientId, HwAddr, INFINITE_LIFETIME, Lease};

use super::syntax::{Statement, Word};

/// What a leases import produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeasesImport {
    /// Active leases, sorted by address.
    pub leases: Vec<Lease>,
    /// Entries (after "last one wins") not imported, counted by reason.
    pub skipped: BTreeMap<String, usize>,
    /// Lease entries read, including superseded ones.
    pub entries: usize,
}

impl LeasesImport {
    /// Report lines for the import report.
    pub fn render(&self) -> String {
        let mut s = format!(
            "leases: {} lease entries read (the last one per address counts), {} active leases imported\n",
            self.entries,
            self.leases.len()
        );
        for (why, n) in &self.skipped {
            s.push_str(&format!("leases: skipped {n}: {why}\n"));
        }
        s
    }
}

/// A dhcpd time: `W YYYY/MM/DD HH:MM:SS` (UTC), `epoch N` or `never`
/// (`Some(None)`). `None` when unreadable.
pub fn parse_time(words: &[Word]) -> Option<Option<u64>> {
    let w: Vec<String> = words.iter().map(Word::text).collect();
    match w.as_slice() {
        [never] if never.eq_ignore_ascii_case("never") => Some(None),
        [epoch, n, ..] if epoch.eq_ignore_ascii_case("epoch") => n.parse().ok().map(Some),
        [_weekday, date, time, ..] => {
            let d: Vec<i64> = date
                .split('/')
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            let t: Vec<i64> = time
                .split(':')
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            let ([y, mo, da], [h, mi, se]) = (d.as_slice(), t.as_slice()) else {
                return None;
            };
            if !(1..=12).contains(mo)
                || !(1..=31).contains(da)
                || !(0..24).contains(h)
                || !(0..60).contains(mi)
                || !(0..61).contains(se)
            {
                return None;
            }
            let days = crate::kea::time::days_from_civil(i32::try_from(*y).ok()?, *mo as u8, *da as u8)?;
            let secs = days * 86_400 + h * 3600 + mi * 60 + se;
            u64::try_from(secs).ok().map(Some)
        }
        _ => None,
    }
}

fn mac(text: &str) -> Option<HwAddr> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect::<Option<_>>()?;
    HwAddr::new(1, bytes).ok()
}

/// Builds leases from parsed dhcpd.leases statements. `subnets` gives each
/// address its subnet id; addresses in none of them are skipped.
pub fn import(stmts: &[Statement], subnets: &[(u32, Cidr)]) -> LeasesImport {
    let mut out = LeasesImport::default();
    let skip =
        |out: &mut LeasesImport, why: &str| *out.skipped.entry(why.to_owned()).or_default() += 1;
    let mut latest: HashMap<Ipv4Addr, &Statement> = HashMap::new();
    let mut order: Vec<Ipv4Addr> = Vec::new();
    for s in stmts {
        if s.starts_with(&["lease"]) && s.block.is_some() {
            out.entries += 1;
            match s
                .words
                .get(1)
                .and_then(|w| w.text().parse::<Ipv4Addr>().ok())
            {
                Some(a) => {
                    if latest.insert(a, s).is_none() {
                        order.push(a);
                    }
                }
                None => skip(&mut out, "lease for something other than an IPv4 address"),
            }
        } else {
            let what = s.words.first().map(Word::text).unwrap_or_default();
            skip(
                &mut out,
                &format!("not a lease ({what} …): runtime state, not imported"),
            );
        }
    }
    order.sort();
    for addr in order {
        let s = latest[&addr];
        let body = s.block.as_deref().unwrap_or_default();
        let find = |ks: &[&str]| body.iter().find(|b| b.starts_with(ks));
        let state = find(&["binding", "state"])
            .and_then(|b| b.words.get(2))
            .map(Word::text)
            .unwrap_or_default();
        if !state.eq_ignore_ascii_case("active") {
            let why = if state.is_empty() {
                "no binding state".to_owned()
            } else {
                format!("binding state {state}")
            };
            skip(&mut out, &why);
            continue;
        }
        let Some(&(subnet_id, _)) = subnets.iter().find(|(_, p)| p.contains(addr)) else {
            skip(&mut out, "active, but in no imported subnet");
            continue;
        };
        let starts = find(&["starts"])
            .and_then(|b| parse_time(&b.words[1..]))
            .flatten();
        let ends = find(&["ends"]).and_then(|b| parse_time(&b.words[1..]));
        let hw = find(&["hardware", "ethernet"])
            .and_then(|b| b.words.get(2))
            .and_then(|w| mac(&w.text()));
        let cid = find(&["uid"]).and_then(|b| match b.words.get(1) {
            Some(Word::Quoted(bytes)) => ClientId::new(bytes.clone()).ok(),
            Some(Word::Bare(hex)) => hex
                .split(':')
                .map(|x| u8::from_str_radix(x, 16).ok())
                .collect::<Option<Vec<u8>>>()
                .and_then(|v| ClientId::new(v).ok()),
            _ => None,
        });
        if hw.is_none() && cid.is_none() {
            skip(&mut out, "active, but without hardware address or uid");
            continue;
        }
        let (cltt, valid) = match (starts, ends) {
            (_, None) => {
                skip(
                    &mut out,
                    "active, but its ends time is missing or unreadable",
                );
                continue;
            }
            (s, Some(None)) => (s.unwrap_or(0), INFINITE_LIFETIME),
            (Some(s), Some(Some(e))) if e >= s && e - s < u64::from(INFINITE_LIFETIME) => {
                (s, (e - s) as u32)
            }
            (_, Some(Some(_))) => {
                skip(
                    &mut out,
                    "active, but its starts/ends times are inconsistent",
                );
                continue;
            }
        };
        let mut lease = Lease::new(addr, hw, cid, subnet_id, cltt, valid);
        if let Some(Word::Quoted(h)) = find(&["client-hostname"]).and_then(|b| b.words.get(1)) {
            lease.hostname = String::from_utf8_lossy(h).into_owned();
        }
        if lease.validate().is_err() {
            skip(&mut out, "active, but not representable as a Kea lease");
            continue;
        }
        out.leases.push(lease);
    }
    out
}

/// The leases as a Kea v4 memfile CSV (header and rows).
pub fn to_csv(leases: &[Lease]) -> String {
    let mut s = String::from(crate::leases::csv::HEADER);
    s.push('\n');
    for l in leases {
        // Validated on import, so formatting cannot fail.
        let _ = crate::leases::csv::format_row(l, &mut s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::syntax::parse;

    #[test]
    fn times() {
        let w = |s: &str| {
            s.split(' ')
                .map(|x| Word::Bare(x.into()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            parse_time(&w("4 2024/01/04 00:00:00")),
            Some(Some(1_704_326_400))
        );
        assert_eq!(
            parse_time(&w("epoch 1700000000")),
            Some(Some(1_700_000_000))
        );
        assert_eq!(parse_time(&w("never")), Some(None));
        assert_eq!(parse_time(&w("4 2024/13/04 00:00:00")), None);
        assert_eq!(parse_time(&w("x")), None);
    }

    #[test]
    fn last_entry_wins_and_only_active_count() {
        let text = r#"
lease 10.0.0.5 { starts 1 2024/01/01 00:00:00; ends 1 2024/01/01 01:00:00; binding state active; hardware ethernet 02:00:00:00:00:05; client-hostname "a"; }
lease 10.0.0.5 { starts 1 2024/01/01 00:30:00; ends 1 2024/01/01 02:30:00; binding state active; hardware ethernet 02:00:00:00:00:05; }
lease 10.0.0.6 { starts 1 2024/01/01 00:00:00; ends 1 2024/01/01 01:00:00; binding state active; hardware ethernet 02:00:00:00:00:06; }
lease 10.0.0.6 { starts 1 2024/01/01 00:00:00; ends 1 2024/01/01 00:10:00; binding state free; hardware ethernet 02:00:00:00:00:06; }
lease 10.9.0.1 { starts 1 2024/01/01 00:00:00; ends 1 2024/01/01 01:00:00; binding state active; hardware ethernet 02:00:00:00:00:07; }
server-duid "x";
"#;
        let stmts = parse(text, "l", &mut |_| Err("no".into())).unwrap();
        let prefix = Cidr::new("10.0.0.0".parse().unwrap(), 24).unwrap();
        let r = import(&stmts, &[(1, prefix)]);
        assert_eq!(r.entries, 5);
        assert_eq!(r.leases.len(), 1);
        let l = &r.leases[0];
        assert_eq!(l.address, "10.0.0.5".parse::<Ipv4Addr>().unwrap());
        assert_eq!(l.valid_lifetime, 7200);
        assert_eq!(l.expire, 1_704_069_000 + 7200);
        assert_eq!(l.hostname, "");
        assert_eq!(r.skipped["binding state free"], 1);
        assert_eq!(r.skipped["active, but in no imported subnet"], 1);
        assert!(
            to_csv(&r.leases)
                .lines()
                .nth(1)
                .unwrap()
                .starts_with("10.0.0.5,02:00:00:00:00:05,,7200,")
        );
    }
}
