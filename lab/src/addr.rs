//! Small address types the topology and helpers share: a MAC address and an
//! IPv4 address with its prefix length. Hand-rolled so the lab needs no
//! networking crate; both print the way `ip` expects them.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use anyhow::{Context, bail};

/// An Ethernet address, so tests can pin a client's identity (reservations
/// are keyed by it) instead of getting a random one from the kernel.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// A locally administered unicast address `02:00:00:00:hi:lo`: the lab's
    /// deterministic MACs, readable in captures.
    pub const fn local(hi: u8, lo: u8) -> Self {
        Mac([0x02, 0, 0, 0, hi, lo])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Mac {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().with_context(|| format!("MAC {s:?}: too few octets"))?;
            if part.is_empty() || part.len() > 2 {
                bail!("MAC {s:?}: bad octet {part:?}");
            }
            *byte = u8::from_str_radix(part, 16).with_context(|| format!("MAC {s:?}: bad octet {part:?}"))?;
        }
        if parts.next().is_some() {
            bail!("MAC {s:?}: too many octets");
        }
        Ok(Mac(out))
    }
}

/// An interface address with its prefix (`192.168.50.2/24`), the unit `ip
/// addr add` takes; also used for a segment's subnet.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The address itself (for a subnet, its network address).
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// Builds one in const context; `prefix` above 32 is clamped to 32 so
    /// the value is always valid.
    pub const fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        Ipv4Cidr { addr, prefix: if prefix > 32 { 32 } else { prefix } }
    }

    /// The netmask, e.g. 255.255.255.0 for /24.
    pub fn netmask(&self) -> Ipv4Addr {
        let bits = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
        Ipv4Addr::from(bits)
    }

    /// Whether `ip` lies in this prefix: lets tests check that a lease landed
    /// in the right subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::from(self.netmask());
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Debug for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let (addr, prefix) = s.split_once('/').with_context(|| format!("{s:?}: expected ADDRESS/PREFIX"))?;
        let addr: Ipv4Addr = addr.parse().with_context(|| format!("{s:?}: bad address"))?;
        let prefix: u8 = prefix.parse().with_context(|| format!("{s:?}: bad prefix"))?;
        if prefix > 32 {
            bail!("{s:?}: prefix above 32");
        }
        Ok(Ipv4Cidr { addr, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips() {
        let mac: Mac = "02:00:00:00:00:03".parse().unwrap();
        assert_eq!(mac, Mac::local(0, 3));
        assert_eq!(mac.to_string(), "02:00:00:00:00:03");
        assert_eq!("0A:0b:0c:0d:0e:0f".parse::<Mac>().unwrap().to_string(), "0a:0b:0c:0d:0e:0f");
    }

    #[test]
    fn mac_rejects_junk() {
        for bad in ["", "02:00:00:00:00", "02:00:00:00:00:03:04", "02:00:00:00:00:xyz", "02::00:00:00:03"] {
            assert!(bad.parse::<Mac>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn cidr_parses_and_masks() {
        let c: Ipv4Cidr = "192.168.50.2/24".parse().unwrap();
        assert_eq!(c.addr, Ipv4Addr::new(192, 168, 50, 2));
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert!(c.contains(Ipv4Addr::new(192, 168, 50, 199)));
        assert!(!c.contains(Ipv4Addr::new(192, 168, 51, 2)));
        assert_eq!(c.to_string(), "192.168.50.2/24");
        assert_eq!(Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).netmask(), Ipv4Addr::UNSPECIFIED);
        assert!("192.168.50.2/33".parse::<Ipv4Cidr>().is_err());
        assert!("192.168.50.2".parse::<Ipv4Cidr>().is_err());
    }
}
