//! The `statistic-*` commands (Kea's `StatsMgr` handlers, texts and
//! argument checks as in Kea 2.2) over the core's typed
//! [`KeaStats`](crate::core::KeaStats); this file owns the Kea names.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};

use super::{
    ApiState,
    command::{Answer, ArgError, Handled, Request},
};
use crate::{
    core::kea_stats::{Global, KeaStat, Limit, Observation, PerSubnet},
    kea::time::kea_stamp,
};

/// Kea's name of a server-wide statistic.
pub const fn global_name(g: Global) -> &'static str {
    use Global::*;
    match g {
        Pkt4Received => "pkt4-received",
        Pkt4DiscoverReceived => "pkt4-discover-received",
        Pkt4OfferReceived => "pkt4-offer-received",
        Pkt4RequestReceived => "pkt4-request-received",
        Pkt4AckReceived => "pkt4-ack-received",
        Pkt4NakReceived => "pkt4-nak-received",
        Pkt4ReleaseReceived => "pkt4-release-received",
        Pkt4DeclineReceived => "pkt4-decline-received",
        Pkt4InformReceived => "pkt4-inform-received",
        Pkt4UnknownReceived => "pkt4-unknown-received",
        Pkt4Sent => "pkt4-sent",
        Pkt4OfferSent => "pkt4-offer-sent",
        Pkt4AckSent => "pkt4-ack-sent",
        Pkt4NakSent => "pkt4-nak-sent",
        Pkt4ParseFailed => "pkt4-parse-failed",
        Pkt4ReceiveDrop => "pkt4-receive-drop",
        V4AllocationFail => "v4-allocation-fail",
        V4AllocationFailSharedNetwork => "v4-allocation-fail-shared-network",
        V4AllocationFailSubnet => "v4-allocation-fail-subnet",
        V4AllocationFailNoPools => "v4-allocation-fail-no-pools",
        V4AllocationFailClasses => "v4-allocation-fail-classes",
        V4ReservationConflicts => "v4-reservation-conflicts",
        CumulativeAssignedAddresses => "cumulative-assigned-addresses",
        DeclinedAddresses => "declined-addresses",
        ReclaimedDeclinedAddresses => "reclaimed-declined-addresses",
        ReclaimedLeases => "reclaimed-leases",
    }
}

/// The part after `subnet[N].`.
pub const fn subnet_name(p: PerSubnet) -> &'static str {
    match p {
        PerSubnet::TotalAddresses => "total-addresses",
        PerSubnet::AssignedAddresses => "assigned-addresses",
        PerSubnet::CumulativeAssignedAddresses => "cumulative-assigned-addresses",
        PerSubnet::DeclinedAddresses => "declined-addresses",
        PerSubnet::ReclaimedDeclinedAddresses => "reclaimed-declined-addresses",
        PerSubnet::ReclaimedLeases => "reclaimed-leases",
        PerSubnet::V4ReservationConflicts => "v4-reservation-conflicts",
    }
}

/// Kea's name of `s`.
pub fn name(s: KeaStat) -> String {
    match s {
        KeaStat::Global(g) => global_name(g).to_owned(),
        KeaStat::Subnet(id, p) => format!("subnet[{id}].{}", subnet_name(p)),
    }
}

/// The statistic Kea calls `name`; `None` for a name no statistic has.
pub fn parse(name: &str) -> Option<KeaStat> {
    if let Some(g) = Global::ALL.into_iter().find(|g| global_name(*g) == name) {
        return Some(KeaStat::Global(g));
    }
    let rest = name.strip_prefix("subnet[")?;
    let (id, stat) = rest.split_once("].")?;
    let id: u32 = id.parse().ok()?;
    PerSubnet::ALL.into_iter().find(|p| subnet_name(*p) == stat).map(|p| KeaStat::Subnet(id, p))
}

/// `[[value, "stamp"], …]`, newest first.
fn samples(o: &Observation) -> Value {
    Value::Array(o.samples().map(|(v, t)| json!([v, kea_stamp(*t)])).collect())
}

/// Runs a `statistic-*` command; `None` if `req` is not one.
pub fn dispatch(state: &ApiState, req: &Request) -> Option<Handled> {
    let now = SystemTime::now();
    let core = &state.core;
    Some(match req.command.as_str() {
        "statistic-get" => stat_name(req).map(|(n, s)| {
            let mut out = Map::new();
            if let Some(v) = s.and_then(|s| core.kea_stats(|k| k.get(s).map(samples))) {
                out.insert(n.to_owned(), v);
            }
            Answer::ok("").without_text().with_args(Value::Object(out))
        }),
        "statistic-get-all" => {
            let all: Map<String, Value> = core.kea_stats(|k| k.iter().map(|(s, o)| (name(s), samples(o))).collect());
            Ok(Answer::ok("").without_text().with_args(Value::Object(all)))
        }
        "statistic-reset" => stat_name(req).map(|(n, s)| {
            found(n, s.is_some_and(|s| core.kea_stats(|k| k.reset(s, now))), format!("Statistic '{n}' reset."))
        }),
        "statistic-remove" => stat_name(req).map(|(n, s)| {
            found(n, s.is_some_and(|s| core.kea_stats(|k| k.remove(s))), format!("Statistic '{n}' removed."))
        }),
        "statistic-reset-all" => {
            core.kea_stats(|k| k.reset_all(now));
            Ok(Answer::ok("All statistics reset to neutral values."))
        }
        "statistic-remove-all" => {
            core.kea_stats(|k| k.remove_all());
            Ok(Answer::ok("Warning: statistic-remove-all command is deprecated. All statistics removed."))
        }
        "statistic-sample-age-set" => stat_name(req).and_then(|(n, s)| {
            let limit = Limit::Age(duration(req)?);
            Ok(found(n, s.is_some_and(|s| core.kea_stats(|k| k.set_limit(s, limit))), format!("Statistic '{n}' duration limit is set.")))
        }),
        "statistic-sample-count-set" => stat_name(req).and_then(|(n, s)| {
            let limit = Limit::Count(max_samples(req)?);
            Ok(found(n, s.is_some_and(|s| core.kea_stats(|k| k.set_limit(s, limit))), format!("Statistic '{n}' count limit is set.")))
        }),
        "statistic-sample-age-set-all" => duration(req).map(|d| {
            core.kea_stats(|k| k.set_limit_all(Limit::Age(d)));
            Answer::ok("All statistics duration limit are set.")
        }),
        "statistic-sample-count-set-all" => max_samples(req).and_then(|n| {
            if n == 0 {
                return Err(ArgError::Other("'max-samples' parameter must not be zero".into()));
            }
            core.kea_stats(|k| k.set_limit_all(Limit::Count(n)));
            Ok(Answer::ok("All statistics count limit are set."))
        }),
        _ => return None,
    })
}

/// Success with `text`, or Kea's "not found" error.
fn found(name: &str, ok: bool, text: String) -> Answer {
    if ok { Answer::ok(text) } else { Answer::error(format!("No '{name}' statistic found")) }
}

fn arg<'a>(req: &'a Request, key: &str) -> Option<&'a Value> {
    req.arguments.as_ref().and_then(|a| a.get(key))
}

/// `name`, checked as Kea's `getStatName` does; with the statistic, if
/// one has that name.
fn stat_name(req: &Request) -> Result<(&str, Option<KeaStat>), ArgError> {
    match arg(req, "name") {
        None => Err(ArgError::Other("Missing mandatory 'name' parameter.".into())),
        Some(Value::String(n)) => Ok((n.as_str(), parse(n))),
        Some(_) => Err(ArgError::Other("'name' parameter expected to be a string.".into())),
    }
}

fn duration(req: &Request) -> Result<Duration, ArgError> {
    match arg(req, "duration") {
        None => Err(ArgError::Other("Missing mandatory 'duration' parameter.".into())),
        Some(v) => v
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| ArgError::Other("'duration' parameter expected to be an integer.".into())),
    }
}

fn max_samples(req: &Request) -> Result<usize, ArgError> {
    match arg(req, "max-samples") {
        None => Err(ArgError::Other("Missing mandatory 'max-samples' parameter.".into())),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| ArgError::Other("'max-samples' parameter expected to be an integer.".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for g in Global::ALL {
            assert_eq!(parse(global_name(g)), Some(KeaStat::Global(g)));
        }
        for p in PerSubnet::ALL {
            let s = KeaStat::Subnet(7, p);
            assert_eq!(parse(&name(s)), Some(s));
        }
        assert_eq!(name(KeaStat::Subnet(1, PerSubnet::TotalAddresses)), "subnet[1].total-addresses");
        assert_eq!(parse("subnet[x].total-addresses"), None);
        assert_eq!(parse("subnet[1].nope"), None);
        assert_eq!(parse("nope"), None);
    }
}
