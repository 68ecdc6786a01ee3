//! Configured options per scope, already encoded, as the server sends them.
//!
//! Kea configs name options (`"name": "routers"`) and give values as text
//! (`"data": "10.0.0.1, 10.0.0.2"`). The server must send exactly the bytes
//! Kea would, so each scope's `option-data` list (global, shared network,
//! subnet, pool, reservation) is turned into an [`OptionSet`] once, at load
//! time, the way Kea 2.2 builds its `CfgOption`:
//!
//! - definitions: [`super::option_def`] (Kea's tables and `option-def`);
//! - values: [`super::option_value`] (text or hex → bytes, Kea's checks);
//! - spaces and sub-options: [`super::option_space`] — an option whose
//!   definition encapsulates a space (43 → `vendor-encapsulated-options-space`,
//!   a custom `container` → `isc`) carries the options of that space set *in
//!   the same scope*, appended after its own data in code order, as Kea's
//!   `CfgOption::encapsulate` does per scope;
//! - vendor options (125): options of the `vendor-<enterprise>` spaces are
//!   kept per enterprise number and merged across scopes like top-level
//!   options; the `vivso-suboptions` option (enterprise number, data-len,
//!   sub-options) is assembled from the most specific scope's
//!   `vivso-suboptions` and the `always-send` options of its enterprise
//!   found along the scopes (Kea's `appendRequestedVendorOptions` for a
//!   configured vivso).
//!
//! Options longer than 255 bytes are split over several options (RFC 3396)
//! when sent, as Kea 2.2 does; a sub-option longer than 255 bytes is
//! refused (Kea splits those too). Deliberate difference: Kea's answer to
//! a client that sends its own vivso option with an enterprise number no
//! configured `vivso-suboptions` names depends on the packet and is not
//! produced here (see [`OptionSet::vendor_options`]).

use std::collections::BTreeMap;

use super::option_def::{self, OptionDef};
use super::option_value::pack_tlvs;

pub use super::option_value::{decode_formatted_hex, kea_tokens, parse_int, quoted_literal, write_fqdn};

/// The standard `dhcp4` definition for `code`, if Kea 2.2 has one.
pub fn option_def(code: u8) -> Option<&'static OptionDef> {
    option_def::standard_dhcp4().iter().find(|d| d.code == code)
}

/// The standard `dhcp4` definition named `name`.
pub fn option_def_by_name(name: &str) -> Option<&'static OptionDef> {
    option_def::standard_dhcp4().iter().find(|d| d.name == name)
}

/// Encodes Kea CSV `data` for a standard definition (no sub-options):
/// the bytes Kea would send, or why Kea refuses the value.
pub fn encode_csv(def: &OptionDef, data: &str) -> Result<Vec<u8>, String> {
    let defs = option_def::OptionDefs::new();
    super::option_value::pack_value(&super::option_value::from_text(def, &defs, data, &mut Vec::new())?)
}

/// Why an option is pointless to carry over from another server's config
/// (the importer's rule): the server sets it per client or per packet.
pub fn server_managed(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "code 0 is reserved for PAD",
        255 => "code 255 is reserved for END",
        50 | 52 | 53 | 55 | 57 | 61 | 81 | 82 => "the server sets this option per packet",
        51 => "the lease time is computed per client; set valid-lifetime (and min-/max-valid-lifetime) instead",
        58 => "T1 is computed per lease; set renew-timer or calculate-tee-times instead",
        59 => "T2 is computed per lease; set rebind-timer or calculate-tee-times instead",
        _ => return None,
    })
}

/// One encoded option, ready to copy into a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpOption {
    code: u8,
    data: Vec<u8>,
    always_send: bool,
}

impl DhcpOption {
    /// Builds an option; the code must not be PAD (0) or END (255). Data
    /// longer than 255 bytes is sent split over several options of the
    /// code (RFC 3396), as Kea 2.2 does (Kea cuts 253-byte pieces, the
    /// encoder 255-byte ones: the client joins the same bytes).
    pub fn new(code: u8, data: Vec<u8>, always_send: bool) -> Result<Self, String> {
        if code == 0 || code == 255 {
            return Err(format!("option code {code} is reserved for {}", if code == 0 { "PAD" } else { "END" }));
        }
        Ok(DhcpOption { code, data, always_send })
    }

    /// A sub-option (in a space other than `dhcp4`, where 0 and 255 are
    /// ordinary codes).
    pub(crate) fn sub(code: u8, data: Vec<u8>, always_send: bool) -> Self {
        DhcpOption { code, data, always_send }
    }

    /// Option code.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// Encoded payload (without code and length).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Kea's `always-send`: include it even when the client did not ask.
    pub fn always_send(&self) -> bool {
        self.always_send
    }

    /// Kea's name for the option, if it is a standard `dhcp4` one.
    pub fn name(&self) -> Option<&'static str> {
        option_def(self.code).map(|d| d.name.as_str())
    }
}

/// A configured `vivso-suboptions` (125): its enterprise number and the
/// sub-options its own data carried. The option sent is built from it by
/// [`OptionSet`], which knows the vendor's options in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Vivso {
    pub enterprise: u32,
    pub subs: Vec<(u8, Vec<u8>)>,
    pub always_send: bool,
}

/// Options by code, at most one per code, with the sub-option spaces and
/// vendor options of the same scopes. Merging lets a more specific scope
/// (pool, reservation) replace what a broader one (global, subnet) set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionSet {
    by_code: BTreeMap<u8, DhcpOption>,
    spaces: BTreeMap<String, BTreeMap<u8, DhcpOption>>,
    vendor: BTreeMap<u32, BTreeMap<u8, DhcpOption>>,
    vivso: Option<Vivso>,
}

impl OptionSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a top-level (`dhcp4`) option, replacing any with the same code.
    pub fn insert(&mut self, opt: DhcpOption) {
        self.by_code.insert(opt.code, opt);
    }

    /// Adds an option of sub-option space `space` (kept for reference: the
    /// options that encapsulate it were assembled when the scope was read).
    pub(crate) fn insert_in_space(&mut self, space: &str, opt: DhcpOption) {
        self.spaces.entry(space.to_owned()).or_default().insert(opt.code, opt);
    }

    /// Adds an option of the `vendor-<enterprise>` space.
    pub(crate) fn insert_vendor(&mut self, enterprise: u32, opt: DhcpOption) {
        self.vendor.entry(enterprise).or_default().insert(opt.code, opt);
        self.finish_vivso();
    }

    /// Sets this scope's `vivso-suboptions`.
    pub(crate) fn set_vivso(&mut self, v: Vivso) {
        self.vivso = Some(v);
        self.finish_vivso();
    }

    /// The top-level option with `code`.
    pub fn get(&self, code: u8) -> Option<&DhcpOption> {
        self.by_code.get(&code)
    }

    /// All top-level options in code order: what the server may send.
    pub fn iter(&self) -> impl Iterator<Item = &DhcpOption> {
        self.by_code.values()
    }

    /// Number of top-level options.
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    /// Whether no top-level option is set.
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// The options set in sub-option space `space` (e.g. `isc`), by code.
    pub fn space_options(&self, space: &str) -> Option<&BTreeMap<u8, DhcpOption>> {
        self.spaces.get(space)
    }

    /// The options of space `vendor-<enterprise>` in force, by code. Kea
    /// also answers a client that sends its own vivso option with these
    /// (its `always-send` ones, and for 4491 those its ORO asks for): that
    /// depends on the packet, so it is the engine's to do with this table.
    pub fn vendor_options(&self, enterprise: u32) -> Option<&BTreeMap<u8, DhcpOption>> {
        self.vendor.get(&enterprise)
    }

    /// `self` with `specific`'s options layered on top (they win per code,
    /// in every space), and the vivso option assembled again.
    pub fn merged_with(&self, specific: &OptionSet) -> OptionSet {
        let mut out = self.clone();
        for o in specific.iter() {
            out.insert(o.clone());
        }
        for (space, opts) in &specific.spaces {
            out.spaces.entry(space.clone()).or_default().extend(opts.iter().map(|(c, o)| (*c, o.clone())));
        }
        for (id, opts) in &specific.vendor {
            out.vendor.entry(*id).or_default().extend(opts.iter().map(|(c, o)| (*c, o.clone())));
        }
        if specific.vivso.is_some() {
            out.vivso = specific.vivso.clone();
        }
        out.finish_vivso();
        out
    }

    /// This set as the options of a scope inside `outer` (a reservation in
    /// its pool or subnet): when it has vendor options or a vivso option,
    /// its vivso option becomes the one the merged scopes send, so the
    /// engine's per-code merge gives the same bytes as the whole chain.
    pub fn in_context(mut self, outer: &OptionSet) -> OptionSet {
        if self.vivso.is_none() && self.vendor.is_empty() {
            return self;
        }
        if let Some(v) = outer.merged_with(&self).by_code.remove(&125) {
            self.by_code.insert(125, v);
        }
        self
    }

    /// Rebuilds option 125 from the vivso in force: enterprise number,
    /// data-len, its own sub-options, then the vendor's `always-send`
    /// options it does not carry yet, in code order, as many as fit.
    fn finish_vivso(&mut self) {
        let Some(v) = &self.vivso else { return };
        let mut subs = v.subs.clone();
        if let Some(opts) = self.vendor.get(&v.enterprise) {
            for o in opts.values().filter(|o| o.always_send) {
                if !subs.iter().any(|(c, _)| *c == o.code) {
                    subs.push((o.code, o.data.clone()));
                }
            }
        }
        subs.sort_by_key(|(c, _)| *c);
        let mut body = Vec::new();
        for s in subs {
            if body.len() + 2 + s.1.len() > 250 {
                break;
            }
            let _ = pack_tlvs(std::slice::from_ref(&s), &mut body);
        }
        let mut data = v.enterprise.to_be_bytes().to_vec();
        data.push(body.len() as u8);
        data.extend(body);
        self.by_code.insert(125, DhcpOption { code: 125, data, always_send: v.always_send });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_prefers_specific() {
        let mut g = OptionSet::new();
        g.insert(DhcpOption::new(3, vec![1, 1, 1, 1], false).unwrap());
        g.insert(DhcpOption::new(15, b"g".to_vec(), false).unwrap());
        let mut s = OptionSet::new();
        s.insert(DhcpOption::new(3, vec![2, 2, 2, 2], true).unwrap());
        let m = g.merged_with(&s);
        assert_eq!(m.get(3).unwrap().data(), [2, 2, 2, 2]);
        assert!(m.get(3).unwrap().always_send());
        assert_eq!(m.get(15).unwrap().data(), b"g");
        assert_eq!(m.get(15).unwrap().name(), Some("domain-name"));
    }

    #[test]
    fn vivso_collects_always_send_vendor_options_across_scopes() {
        // Global: vivso for 41112 and a requested-only sub-option 2;
        // subnet: sub-option 1 always sent (Kea's "unifi" example shape).
        let mut global = OptionSet::new();
        global.set_vivso(Vivso { enterprise: 41112, subs: vec![], always_send: false });
        global.insert_vendor(41112, DhcpOption::sub(2, vec![9], false));
        assert_eq!(global.get(125).unwrap().data(), [0, 0, 0xa0, 0x98, 0]);
        let mut subnet = OptionSet::new();
        subnet.insert_vendor(41112, DhcpOption::sub(1, vec![192, 0, 2, 11], true));
        subnet.insert_vendor(339, DhcpOption::sub(1, vec![7], true));
        let m = global.merged_with(&subnet);
        assert_eq!(m.get(125).unwrap().data(), [0, 0, 0xa0, 0x98, 6, 1, 4, 192, 0, 2, 11]);
        // A reservation overriding sub-option 1 gets its own vivso bytes.
        let mut host = OptionSet::new();
        host.insert_vendor(41112, DhcpOption::sub(1, vec![10, 0, 0, 1], true));
        let host = host.in_context(&m);
        assert_eq!(host.get(125).unwrap().data(), [0, 0, 0xa0, 0x98, 6, 1, 4, 10, 0, 0, 1]);
        assert_eq!(m.merged_with(&host).get(125), host.get(125));
        assert_eq!(m.vendor_options(339).unwrap()[&1].data(), [7]);
    }

    #[test]
    fn reserved_codes_are_refused_long_options_are_not() {
        assert!(DhcpOption::new(0, vec![], false).is_err());
        assert!(DhcpOption::new(255, vec![], false).is_err());
        assert!(DhcpOption::new(200, vec![0; 300], false).is_ok(), "long options are split when sent");
    }
}
