//! Client classification as Kea 2.2 does it: the expression language
//! ([`expr`]) and the order in which a packet's classes are assigned.
//!
//! A packet's classes form an ordered set ([`ClientClasses`]): the first
//! class in it that sets an option, a boot field or a lifetime gives the
//! value, so the order is Kea's (`Dhcpv4Exchange`, `dhcp4_srv.cc`):
//!
//! 1. on receipt: `BOOTP` (from `libdhcp_bootp.so`, for a request without
//!    a message type), `ALL`, `VENDOR_CLASS_<option 60>`, then every class
//!    with a `test` that neither depends on `KNOWN`/`UNKNOWN` nor is
//!    `only-if-required`, in configuration order ([`Pass::OnReceipt`]);
//!    a packet then in `DROP` is dropped;
//! 2. after the host reservation lookup: the reservation's
//!    `client-classes` (the first pass is then redone without its tested
//!    classes, so a `not member(…)` test sees them), `KNOWN` or
//!    `UNKNOWN`, then the tests that depend on them
//!    ([`Pass::AfterHostLookup`]); `DROP` again;
//! 3. after the address is chosen: the `require-client-classes` of the
//!    shared network, subnet and pool, in that order ([`evaluate_required`]).
//!
//! With no `client-classes` configured nothing here runs per packet.

pub mod expr;

use expr::{Bool, Packet};

/// The built-in class every packet is in.
pub const ALL: &str = "ALL";
/// Set when a host reservation exists for the client.
pub const KNOWN: &str = "KNOWN";
/// Set when none does.
pub const UNKNOWN: &str = "UNKNOWN";
/// Set for BOOTP requests (Kea's `libdhcp_bootp.so`).
pub const BOOTP: &str = "BOOTP";
/// Packets in this class are dropped.
pub const DROP: &str = "DROP";
/// Prefix of the class named after option 60.
pub const VENDOR_CLASS_PREFIX: &str = "VENDOR_CLASS_";

/// Whether `name` is a class Kea defines itself (`isClientClassBuiltIn`):
/// a `member()` may name it without a definition.
pub fn is_builtin(name: &str) -> bool {
    matches!(name, ALL | KNOWN | UNKNOWN | BOOTP)
        || ["VENDOR_CLASS_", "HA_", "AFTER_", "EXTERNAL_"].iter().any(|p| name.len() > p.len() && name.starts_with(p))
}

/// The classes of one packet, in the order they were assigned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientClasses(Vec<String>);

impl ClientClasses {
    /// No class at all (what the engine sees when classification is off).
    pub const fn none() -> Self {
        ClientClasses(Vec::new())
    }

    /// Adds `name` at the end unless already there.
    pub fn add(&mut self, name: &str) {
        if !self.contains(name) {
            self.0.push(name.to_owned());
        }
    }

    /// Whether the packet is in `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|c| c == name)
    }

    /// The classes in assignment order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes every class `drop` names.
    pub fn remove_where(&mut self, drop: impl Fn(&str) -> bool) {
        self.0.retain(|c| !drop(c));
    }

    /// Whether a network, subnet or pool restricted to `class` (`None`:
    /// unrestricted) serves this packet (Kea's `clientSupported`).
    pub fn allows(&self, class: Option<&str>) -> bool {
        class.is_none_or(|c| self.contains(c))
    }
}

/// One configured class as evaluation needs it.
pub trait ClassDef {
    /// `name`.
    fn name(&self) -> &str;
    /// The parsed `test`, if any.
    fn test(&self) -> Option<&Bool>;
    /// `only-if-required`.
    fn required(&self) -> bool;
    /// Whether the test depends on `KNOWN`/`UNKNOWN`.
    fn depends_on_known(&self) -> bool;
}

/// Which of the two evaluation passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// On receipt: tests that do not depend on the host lookup.
    OnReceipt,
    /// After the host lookup: tests that do.
    AfterHostLookup,
}

/// The built-in classes of a received packet: `BOOTP` for a BOOTP
/// request, `ALL`, and `VENDOR_CLASS_` + option 60 (as Kea reads it: a
/// string without trailing NULs).
pub fn builtin(bytes: &[u8], bootp: bool) -> ClientClasses {
    let mut c = ClientClasses::none();
    if bootp {
        c.add(BOOTP);
    }
    c.add(ALL);
    let p = Packet { bytes, iface: "", src: std::net::Ipv4Addr::UNSPECIFIED, dst: std::net::Ipv4Addr::UNSPECIFIED };
    let src = expr::ast::Source::Option { code: 60, string: true };
    let vendor = expr::eval_str(&expr::Str::Option(src, expr::ast::Repr::Hex), &p, &|_| false).unwrap_or_default();
    if !vendor.is_empty() {
        c.add(&format!("{VENDOR_CLASS_PREFIX}{}", String::from_utf8_lossy(&vendor)));
    }
    c
}

/// Runs one pass: each class of `defs` (in order) with a test for this
/// pass joins `classes` when its test holds; a test that errs does not
/// match (Kea logs it and moves on).
pub fn evaluate<C: ClassDef>(defs: &[C], pass: Pass, pkt: &Packet<'_>, classes: &mut ClientClasses) {
    for d in defs {
        let Some(test) = d.test() else { continue };
        if d.required() || d.depends_on_known() != (pass == Pass::AfterHostLookup) {
            continue;
        }
        let hit = expr::eval_bool(test, pkt, &|c| classes.contains(c));
        if let Err(e) = &hit {
            tracing::debug!(class = d.name(), error = %e, "class test failed to evaluate");
        }
        if hit.unwrap_or(false) {
            classes.add(d.name());
        }
    }
}

/// The required-class step: each name in `required` (network's, then
/// subnet's, then pool's) that is a defined class with a test joins
/// `classes` when its test holds.
pub fn evaluate_required<'a, C: ClassDef>(
    defs: &[C],
    required: impl IntoIterator<Item = &'a str>,
    pkt: &Packet<'_>,
    classes: &mut ClientClasses,
) {
    let mut seen: Vec<&str> = Vec::new();
    for name in required {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        let Some(test) = defs.iter().find(|d| d.name() == name).and_then(ClassDef::test) else { continue };
        if expr::eval_bool(test, pkt, &|c| classes.contains(c)).unwrap_or(false) {
            classes.add(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expr::Context;

    struct Def(&'static str, Option<Bool>, bool, bool);
    impl ClassDef for Def {
        fn name(&self) -> &str {
            self.0
        }
        fn test(&self) -> Option<&Bool> {
            self.1.as_ref()
        }
        fn required(&self) -> bool {
            self.2
        }
        fn depends_on_known(&self) -> bool {
            self.3
        }
    }

    struct Cx;
    impl Context for Cx {
        fn option_code(&self, _: &str) -> Option<u8> {
            None
        }
        fn is_string_option(&self, c: u8) -> bool {
            c == 60
        }
        fn class(&self, _: &str) -> Option<bool> {
            Some(false)
        }
    }

    fn def(name: &'static str, test: &str, required: bool) -> Def {
        let p = expr::parse_bool(test, &Cx).unwrap();
        let known = test.contains("KNOWN");
        Def(name, Some(p.expr), required, known)
    }

    fn discover_with_vendor(vendor: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 240];
        b[0] = 1;
        b[236..240].copy_from_slice(&[99, 130, 83, 99]);
        b.extend([53, 1, 1, 60, vendor.len() as u8]);
        b.extend(vendor);
        b.push(255);
        b
    }

    #[test]
    fn passes_run_in_kea_order() {
        let bytes = discover_with_vendor(b"PXEClient\0");
        let p = Packet { bytes: &bytes, iface: "eth0", src: std::net::Ipv4Addr::UNSPECIFIED, dst: std::net::Ipv4Addr::BROADCAST };
        let defs = [
            def("pxe", "substring(option[60].hex,0,9) == 'PXEClient'", false),
            def("not-pxe", "not member('pxe')", false),
            def("known-pxe", "member('KNOWN') and member('pxe')", false),
            def("late", "member('pxe')", true),
        ];
        let mut c = builtin(&bytes, false);
        assert_eq!(c.iter().collect::<Vec<_>>(), ["ALL", "VENDOR_CLASS_PXEClient"]);
        evaluate(&defs, Pass::OnReceipt, &p, &mut c);
        assert_eq!(c.iter().collect::<Vec<_>>(), ["ALL", "VENDOR_CLASS_PXEClient", "pxe"]);
        c.add(KNOWN);
        evaluate(&defs, Pass::AfterHostLookup, &p, &mut c);
        assert!(c.contains("known-pxe") && !c.contains("late"));
        evaluate_required(&defs, ["late", "nope"], &p, &mut c);
        assert!(c.contains("late"));
        assert!(c.allows(None) && c.allows(Some("pxe")) && !c.allows(Some("not-pxe")));
    }

    #[test]
    fn builtin_names() {
        assert!(is_builtin("ALL") && is_builtin("VENDOR_CLASS_x") && !is_builtin("VENDOR_CLASS_") && !is_builtin("DROP"));
        assert_eq!(builtin(&discover_with_vendor(b"\0\0"), true).iter().collect::<Vec<_>>(), ["BOOTP", "ALL"]);
    }
}
