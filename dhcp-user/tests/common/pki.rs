//! Certificates for the venus pair over HTTPS (`lab_ha_tls`,
//! `lab_ha_reconf`): a CA and one certificate per server, named by its HA
//! address.

use std::path::Path;

use lab::venus;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA in `dir` and one certificate per server, named by its HA address.
pub fn pki(dir: &Path) -> Vec<(String, String, String)> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "venus-ha-ca");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = p.self_signed(&ca_key).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    [(venus::PRIMARY, venus::PRIMARY_HA), (venus::STANDBY, venus::STANDBY_HA)]
        .iter()
        .map(|(name, ip)| {
            let mut p = CertificateParams::new(vec![ip.to_string()]).unwrap();
            p.distinguished_name.push(DnType::CommonName, *name);
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
            let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
            std::fs::write(&c, cert.pem()).unwrap();
            std::fs::write(&k, key.serialize_pem()).unwrap();
            (ca_file.display().to_string(), c.display().to_string(), k.display().to_string())
        })
        .collect()
}
