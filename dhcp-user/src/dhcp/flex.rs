//! Kea's flex-option hook where Kea runs it, at `pkt4_send`: the reply is
//! complete (server identifier, lease times, configured and class options)
//! and each configured entry adds, replaces or removes one of its options
//! by an expression over the query (`FlexOptionImpl::process`). Pure: the
//! packet, its classes and the reply in, the reply edited.

use dhcproto::v4::{DhcpOption, Message, OptionCode, UnknownOption};

use crate::classify::ClientClasses;
use crate::classify::expr::{self, Packet};
use crate::config::flex_option::{FlexAction, FlexOptions};

/// Applies every entry of `flex`, in order, to `reply` for the query
/// `pkt` in `classes`. An expression that cannot be evaluated, or a csv
/// value its option's definition refuses, leaves the reply as it was for
/// that entry and is logged (Kea logs the callout's exception and sends
/// the reply).
pub fn apply(flex: &FlexOptions, reply: &mut Message, pkt: &Packet<'_>, classes: &ClientClasses) {
    let member = |c: &str| classes.contains(c);
    for e in &flex.entries {
        if e.client_class.as_deref().is_some_and(|c| !classes.contains(c)) {
            continue;
        }
        let code = OptionCode::from(e.code);
        let has = reply.opts().get(code).is_some();
        let outcome: Result<(), String> = match &e.action {
            FlexAction::Add(_) if has => Ok(()),
            FlexAction::Add(x) | FlexAction::Supersede(x) => match expr::eval_str(x, pkt, &member) {
                Err(err) => Err(err.to_string()),
                Ok(v) if v.is_empty() => Ok(()),
                Ok(v) => flex.encode(e, &v).map(|data| {
                    reply.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(code, data)));
                }),
            },
            FlexAction::Remove(_) if !has => Ok(()),
            FlexAction::Remove(x) => match expr::eval_bool(x, pkt, &member) {
                Err(err) => Err(err.to_string()),
                Ok(false) => Ok(()),
                Ok(true) => {
                    reply.opts_mut().remove(code);
                    Ok(())
                }
            },
        };
        if let Err(why) = outcome {
            tracing::warn!(option = e.code, expression = %e.text, "flex-option: reply left unchanged for this entry: {why}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use dhcproto::v4::MessageType;
    use serde_json::json;

    use super::*;
    use crate::config::flex_option;
    use crate::config::option_def::OptionDefs;

    fn flex(entries: serde_json::Value) -> FlexOptions {
        flex_option::parse(Some(&json!({ "options": entries })), "p", &OptionDefs::new()).unwrap()
    }

    /// A REQUEST, with host-name `name` when given, as received bytes.
    fn query(name: Option<&str>) -> Vec<u8> {
        use dhcproto::Encodable as _;
        let mut m = Message::default();
        m.set_chaddr(&[2, 0, 0, 0, 0, 7]);
        m.opts_mut().insert(DhcpOption::MessageType(MessageType::Request));
        if let Some(n) = name {
            m.opts_mut().insert(DhcpOption::Hostname(n.into()));
        }
        m.to_vec().unwrap()
    }

    fn reply() -> Message {
        let mut m = Message::default();
        m.opts_mut().insert(DhcpOption::MessageType(MessageType::Ack));
        m.opts_mut().insert(DhcpOption::DomainName("example.org".into()));
        m
    }

    fn data(m: &Message, code: u8) -> Option<Vec<u8>> {
        use dhcproto::Encodable as _;
        let opt = m.opts().get(OptionCode::from(code))?;
        let mut buf = Vec::new();
        opt.encode(&mut dhcproto::Encoder::new(&mut buf)).unwrap();
        Some(buf[2..].to_vec())
    }

    fn run(f: &FlexOptions, q: &[u8], classes: &ClientClasses) -> Message {
        let pkt = Packet { bytes: q, iface: "eth0", src: Ipv4Addr::UNSPECIFIED, dst: Ipv4Addr::BROADCAST };
        let mut m = reply();
        apply(f, &mut m, &pkt, classes);
        m
    }

    #[test]
    fn add_only_when_absent_and_not_empty() {
        let f = flex(json!([{"code": 67, "add": "ifelse(option[host-name].exists, concat(option[host-name].text, '.boot'), '')", "csv-format": true},
                           {"code": 15, "add": "'other.org'"}]));
        let m = run(&f, &query(Some("pc1")), &ClientClasses::default());
        assert_eq!(data(&m, 67), Some(b"pc1.boot".to_vec()));
        assert_eq!(data(&m, 15), Some(b"example.org".to_vec()), "add never replaces");
        let m = run(&f, &query(None), &ClientClasses::default());
        assert_eq!(data(&m, 67), None, "an empty value adds nothing");
    }

    #[test]
    fn supersede_encodes_csv_by_the_definition() {
        let f = flex(json!([{"code": 6, "supersede": "ifelse(option[host-name].text == 'x', '10.0.0.1', '10.0.0.2,10.0.0.3')", "csv-format": true}]));
        let m = run(&f, &query(Some("x")), &ClientClasses::default());
        assert_eq!(data(&m, 6), Some(vec![10, 0, 0, 1]));
        let m = run(&f, &query(Some("y")), &ClientClasses::default());
        assert_eq!(data(&m, 6), Some(vec![10, 0, 0, 2, 10, 0, 0, 3]));
        let bad = flex(json!([{"code": 6, "supersede": "'not-an-address'", "csv-format": true}]));
        let m = run(&bad, &query(None), &ClientClasses::default());
        assert_eq!(data(&m, 6), None, "a value the definition refuses changes nothing");
    }

    #[test]
    fn remove_when_true_and_client_class_gates_an_entry() {
        let f = flex(json!([{"code": 15, "remove": "member('KNOWN')"}]));
        let mut known = ClientClasses::default();
        known.add("KNOWN");
        assert_eq!(data(&run(&f, &query(None), &known), 15), None);
        assert!(data(&run(&f, &query(None), &ClientClasses::default()), 15).is_some());
        let gated = flex(json!([{"code": 15, "remove": "member('ALL')", "client-class": "phones"}]));
        assert!(data(&run(&gated, &query(None), &known), 15).is_some());
        let mut phones = ClientClasses::default();
        phones.add("ALL");
        phones.add("phones");
        assert_eq!(data(&run(&gated, &query(None), &phones), 15), None);
    }
}
