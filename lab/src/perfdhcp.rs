//! perfdhcp's (Kea 2.2) final report, parsed: one parser for the lab test
//! that checks 10,000 DORA exchanges and for `cargo xtask bench alloc`,
//! so both read the same numbers the same way.

/// One exchange's final counters (`***Statistics for: …***`).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Exchange {
    /// Requests perfdhcp sent.
    pub sent: u64,
    /// Replies it matched to a request.
    pub received: u64,
    /// Requests whose reply did not come within the drop time (`-d`).
    pub drops: u64,
    /// Replies it could not match to a request.
    pub orphans: u64,
    /// Offers/ACKs whose address perfdhcp rejected.
    pub rejected: u64,
    /// Addresses handed out twice (with `-u`).
    pub non_unique: u64,
    /// Mean delay, milliseconds.
    pub avg_ms: f64,
    /// Longest delay, milliseconds.
    pub max_ms: f64,
}

/// perfdhcp's final report.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Report {
    /// Completed exchanges (REQUEST-ACK in DORA mode) per second of the
    /// test period: perfdhcp's `Rate:` line.
    pub rate: f64,
    /// DISCOVER-OFFER counters.
    pub discover_offer: Exchange,
    /// REQUEST-ACK counters.
    pub request_ack: Exchange,
}

/// Parses the final report: from the last `***Rate statistics***` on
/// (perfdhcp prints intermediate reports with `-t`). `None` when there is
/// none or no exchange was sent, e.g. when perfdhcp failed to start.
pub fn parse_report(out: &str) -> Option<Report> {
    let start = out.rfind("***Rate statistics***")?;
    let mut report = Report::default();
    let mut current: Option<&mut Exchange> = None;
    for line in out[start..].lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Rate:") {
            report.rate = rest.split_whitespace().next()?.parse().ok()?;
        } else if line == "***Statistics for: DISCOVER-OFFER***" {
            current = Some(&mut report.discover_offer);
        } else if line == "***Statistics for: REQUEST-ACK***" {
            current = Some(&mut report.request_ack);
        } else if line.starts_with("***") {
            // Renewals, releases (`-f`, `-F`; releases get no reply, so
            // their delays print as `inf`/`n/a`): not counted here.
            current = None;
        } else if let (Some(x), Some((key, value))) = (current.as_deref_mut(), line.split_once(':')) {
            let value = value.trim();
            let count = || value.parse::<u64>().ok();
            let ms = || value.trim_end_matches(" ms").parse::<f64>().ok();
            // A known key with an unreadable value means the format changed:
            // better no report than a silently wrong one.
            match key {
                "sent packets" => x.sent = count()?,
                "received packets" => x.received = count()?,
                "drops" => x.drops = count()?,
                "orphans" => x.orphans = count()?,
                "rejected leases" => x.rejected = count()?,
                "non unique addresses" => x.non_unique = count()?,
                "avg delay" => x.avg_ms = ms()?,
                "max delay" => x.max_ms = ms()?,
                _ => {}
            }
        }
    }
    (report.discover_offer.sent > 0 || report.request_ack.sent > 0).then_some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "Running: perfdhcp -4 ...\n***Rate statistics***\nRate: 1.5 4-way exchanges/second\n\
        ***Rate statistics***\nRate: 9746.85 4-way exchanges/second, expected rate: 10000\n\n\
        ***Malformed Packets***\nMalformed packets: 0\n***Statistics for: DISCOVER-OFFER***\nsent packets: 20002\n\
        received packets: 19909\ndrops: 93\ndrops ratio: 0.46 %\norphans: 0\nrejected leases: 1\nnon unique addresses: 0\n\n\
        min delay: 0.118 ms\navg delay: 0.465 ms\nmax delay: 7.580 ms\nstd deviation: 0.698 ms\ncollected packets: 0\n\n\
        ***Statistics for: REQUEST-ACK***\nsent packets: 19909\nreceived packets: 19572\ndrops: 337\n\
        drops ratio: 1.69 %\norphans: 2\nrejected leases: 0\nnon unique addresses: 3\n\n\
        min delay: 0.306 ms\navg delay: 1.701 ms\nmax delay: 39.711 ms\n";

    #[test]
    fn parses_the_last_report() {
        let r = parse_report(OUT).unwrap();
        assert_eq!(r.rate, 9746.85);
        let d = r.discover_offer;
        assert_eq!((d.sent, d.received, d.drops, d.orphans, d.rejected), (20002, 19909, 93, 0, 1));
        assert_eq!((d.avg_ms, d.max_ms), (0.465, 7.580));
        let a = r.request_ack;
        assert_eq!((a.sent, a.received, a.drops, a.orphans, a.non_unique), (19909, 19572, 337, 2, 3));
        assert_eq!((a.avg_ms, a.max_ms), (1.701, 39.711));
    }

    #[test]
    fn later_sections_are_not_mixed_in() {
        let release = "\n***Statistics for: RELEASE***\nsent packets: 58\nreceived packets: 0\ndrops: 58\n\
            min delay: inf ms\navg delay: min delay: n/a\navg delay: n/a\nmax delay: n/a\n";
        let r = parse_report(&format!("{OUT}{release}")).unwrap();
        assert_eq!((r.request_ack.sent, r.request_ack.drops), (19909, 337));
    }

    #[test]
    fn no_report_when_perfdhcp_failed_or_the_format_changed() {
        assert!(parse_report("perfdhcp: cannot open socket").is_none());
        assert!(parse_report("***Rate statistics***\nRate: 0 4-way exchanges/second\n").is_none());
        assert!(parse_report(&OUT.replace("drops: 93", "drops: many")).is_none());
    }
}
