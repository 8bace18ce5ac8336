//! Check 5b: the client certificate names the host registered for the sender's ASID (SSP
//! implementation guide: *"The FQDN presented in the client certificate MUST be checked
//! against the FQDN registered against the ASID"*). Only consumers whose routes.toml entry
//! gives an `fqdn` are bound; the others pass, as before.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;

use x509_cert::der::asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef};
use x509_cert::der::{oid::db::rfc4519::CN, Decode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::config::routes::Consumer;

/// The host names a client certificate presents, read once per connection after the handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateNames {
    /// Its DNS subjectAltNames, in order.
    pub dns: Vec<String>,
    /// Its subject's common name, if it has one.
    pub common_name: Option<String>,
}

/// How many distinct client certificates each thread keeps the names of: consumers reconnect
/// with the same few, and reading one takes more instructions than all the rest of a request.
const REMEMBERED: usize = 16;

/// Certificates (as DER) and the names read from them, most recently read first.
type Read = VecDeque<(Box<[u8]>, Arc<CertificateNames>)>;

thread_local! {
    /// The certificates whose names this thread read last.
    static READ: RefCell<Read> = const { RefCell::new(VecDeque::new()) };
}

impl CertificateNames {
    /// The names in a connection's client certificate, read once per distinct certificate
    /// (per thread, for the last [`REMEMBERED`]); `None` if it does not parse.
    pub fn of_client(der: &[u8]) -> Option<Arc<Self>> {
        READ.with_borrow_mut(|read| {
            if let Some((_, names)) = read.iter().find(|(seen, _)| **seen == *der) {
                return Some(names.clone());
            }
            let names = Arc::new(Self::from_der(der)?);
            read.truncate(REMEMBERED - 1);
            read.push_front((der.into(), names.clone()));
            Some(names)
        })
    }

    /// The names in a DER certificate; `None` if it does not parse (the handshake already
    /// verified it, so that does not happen with a certificate that chains to `ca.pem`).
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let cert = Certificate::from_der(der).ok()?;
        let tbs = &cert.tbs_certificate;
        let dns = match tbs.get::<SubjectAltName>() {
            Ok(Some((_, san))) => san
                .0
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DnsName(dns) => Some(dns.to_string()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let common_name = tbs
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .find(|atv| atv.oid == CN)
            .and_then(|atv| {
                Utf8StringRef::try_from(&atv.value)
                    .map(|s| s.as_str().to_owned())
                    .or_else(|_| {
                        PrintableStringRef::try_from(&atv.value).map(|s| s.as_str().to_owned())
                    })
                    .or_else(|_| Ia5StringRef::try_from(&atv.value).map(|s| s.as_str().to_owned()))
                    .ok()
            });
        Some(Self { dns, common_name })
    }

    /// Whether it names `fqdn`: one of its DNS names, or else its common name (what Spine's
    /// own check reads), compared without regard to case as host names are.
    fn names(&self, fqdn: &str) -> bool {
        self.dns
            .iter()
            .chain(self.common_name.as_ref())
            .any(|name| name.eq_ignore_ascii_case(fqdn))
    }

    /// The names, for the refusal's diagnostics.
    fn describe(&self) -> String {
        let mut names: Vec<&str> = self.dns.iter().map(String::as_str).collect();
        if let Some(cn) = &self.common_name {
            names.push(cn);
        }
        if names.is_empty() {
            "no host name".to_owned()
        } else {
            names.join(", ")
        }
    }
}

/// Check 5b: a consumer bound to a host name sends with a certificate for that host.
///
/// - Reads: the consumer check 5 found, and the names of the connection's client certificate.
/// - Refuses: a bound consumer's request over a certificate naming another host, or with no
///   certificate, with 403 [`sender-asid-not-authorised`](ids::SENDER_NOT_AUTHORISED) as Spine
///   refuses an ASID check, the reason in the diagnostics (`Ssp-Sim-Diagnostics`).
pub fn check(consumer: &Consumer, presented: Option<&CertificateNames>) -> Result<(), Rejection> {
    let Some(fqdn) = &consumer.fqdn else {
        return Ok(());
    };
    let reason = match presented {
        Some(names) if names.names(fqdn) => return Ok(()),
        Some(names) => format!(
            "the client certificate names {}, but SDS registers ASID {} to {fqdn}",
            names.describe(),
            consumer.asid.as_str()
        ),
        None => format!(
            "no client certificate was presented, and SDS registers ASID {} to {fqdn}",
            consumer.asid.as_str()
        ),
    };
    Err(Rejection::new(ids::SENDER_NOT_AUTHORISED)
        .with(Placeholder::FromAsid, consumer.asid.as_str())
        .with(Placeholder::Diagnostics, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(host: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn a_client_certificate_is_read_once_while_it_is_among_the_last_remembered() {
        let first = certificate("first.example.nhs.uk");
        let names = CertificateNames::of_client(&first).unwrap();
        assert_eq!(names.dns, ["first.example.nhs.uk"]);
        assert!(Arc::ptr_eq(
            &names,
            &CertificateNames::of_client(&first).unwrap()
        ));
        for i in 0..REMEMBERED {
            let other = certificate(&format!("host{i}.example.nhs.uk"));
            let read = CertificateNames::of_client(&other).unwrap();
            assert_eq!(read.dns, [format!("host{i}.example.nhs.uk")]);
        }
        let again = CertificateNames::of_client(&first).unwrap();
        assert!(!Arc::ptr_eq(&names, &again), "read again once forgotten");
        assert_eq!(*again, *names);
        assert!(CertificateNames::of_client(b"not DER").is_none());
    }
}
