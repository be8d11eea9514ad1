//! X.509 identities: the emulator's certificate authority, device certificates issued like
//! `aws iot create-keys-and-certificate`, certificate ids, and the mutual-TLS server configuration that admits
//! only registered, ACTIVE certificates.
//!
//! AWS IoT identifies an X.509 principal by the SHA-256 of the certificate's DER (64 hex characters); that id is
//! the `principalIdentifier` of lifecycle events (reference 1.2) and `${iot:CertificateId}` in policies
//! (reference 4.4).

mod tls;

use std::fs;
use std::path::{Path, PathBuf};

use iot_policy::{AltNameKind, CertificateContext, DnAttribute};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

pub use tls::{RegisteredCertificateVerifier, server_tls_config};

/// The subject common name AWS gives the certificates it creates (`create-keys-and-certificate`).
pub const AWS_ISSUED_COMMON_NAME: &str = "AWS IoT Certificate";
const CA_COMMON_NAME: &str = "IoT Presence Emulator Root CA";
const CA_ORGANIZATION: &str = "iot-presence emulator";

/// Errors while creating or loading identities.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("reading or writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("not a PEM certificate")]
    NotPem,
}

/// The certificate id AWS IoT uses: lowercase hex SHA-256 of the DER encoding.
pub fn certificate_id(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The DER of the first certificate in a PEM text.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, IdentityError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|der| der.as_ref().to_vec())
        .map_err(|_| IdentityError::NotPem)
}

/// The certificate policy variables of a client certificate (reference 4.4). Fields x509-parser cannot read are
/// left out, so their variables stay unresolved, as AWS does for absent fields.
pub fn certificate_context(der: &[u8]) -> CertificateContext {
    let mut context = CertificateContext::new(certificate_id(der));
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(der) else {
        return context;
    };
    context.serial_number = Some(certificate.tbs_certificate.serial.to_string());
    for (attribute, values) in dn_values(certificate.subject()) {
        for value in values {
            context = context.with_subject(attribute, value);
        }
    }
    for (attribute, values) in dn_values(certificate.issuer()) {
        for value in values {
            context = context.with_issuer(attribute, value);
        }
    }
    if let Ok(Some(extension)) = certificate.subject_alternative_name() {
        use x509_parser::extensions::GeneralName;
        for name in &extension.value.general_names {
            let (kind, value) = match name {
                GeneralName::DNSName(dns) => (AltNameKind::DnsName, (*dns).to_owned()),
                GeneralName::RFC822Name(mail) => (AltNameKind::Rfc822Name, (*mail).to_owned()),
                GeneralName::URI(uri) => {
                    (AltNameKind::UniformResourceIdentifier, (*uri).to_owned())
                }
                GeneralName::IPAddress(bytes) => match ip_text(bytes) {
                    Some(ip) => (AltNameKind::IpAddress, ip),
                    None => continue,
                },
                _ => continue,
            };
            context = context.with_subject_alternative_name(kind, value);
        }
    }
    context
}

fn dn_values(name: &x509_parser::x509::X509Name<'_>) -> Vec<(DnAttribute, Vec<String>)> {
    let text = |iter: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        iter.filter_map(|value| value.as_str().ok().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    vec![
        (DnAttribute::CommonName, text(&mut name.iter_common_name())),
        (
            DnAttribute::Organization,
            text(&mut name.iter_organization()),
        ),
        (
            DnAttribute::OrganizationalUnit,
            text(&mut name.iter_organizational_unit()),
        ),
        (DnAttribute::Country, text(&mut name.iter_country())),
        (DnAttribute::State, text(&mut name.iter_state_or_province())),
    ]
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|octets| std::net::Ipv4Addr::from(octets).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|octets| std::net::Ipv6Addr::from(octets).to_string()),
        _ => None,
    }
}

/// A device certificate and its key pair, as `create-keys-and-certificate` returns them.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub certificate_id: String,
    pub certificate_pem: String,
    pub certificate_der: Vec<u8>,
    pub private_key_pem: String,
    pub public_key_pem: String,
}

/// The emulator's root CA (persisted in the state directory) and the broker's server certificate.
///
/// The CA's key and certificate live in `{state}/ca/`; devices trust `root-CA.pem` the way real devices trust
/// AmazonRootCA1. The server certificate is issued afresh on every start for the names the broker listens on.
pub struct EmulatorCa {
    ca_key: KeyPair,
    ca_params: CertificateParams,
    root_pem: String,
    root_der: Vec<u8>,
}

impl std::fmt::Debug for EmulatorCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorCa")
            .field("root_certificate_id", &certificate_id(&self.root_der))
            .finish_non_exhaustive()
    }
}

/// The broker's TLS server certificate and key (DER for rustls, PEM for other servers such as mosquitto in the
/// benchmarks).
pub struct ServerIdentity {
    pub certificate_der: Vec<u8>,
    pub private_key_der: Vec<u8>,
    pub certificate_pem: String,
    pub private_key_pem: String,
}

impl EmulatorCa {
    /// Loads `{state_dir}/ca/root-CA.{pem,key}`, creating them on first use.
    pub fn load_or_create(state_dir: &Path) -> Result<EmulatorCa, IdentityError> {
        let dir = state_dir.join("ca");
        let cert_path = dir.join("root-CA.pem");
        let key_path = dir.join("root-CA.key");
        if cert_path.exists() && key_path.exists() {
            let key_pem = read_text(&key_path)?;
            let root_pem = read_text(&cert_path)?;
            let ca_key = KeyPair::from_pem(&key_pem)?;
            let root_der = pem_to_der(&root_pem)?;
            return Ok(EmulatorCa {
                ca_key,
                ca_params: ca_params(),
                root_pem,
                root_der,
            });
        }
        let ca = EmulatorCa::generate()?;
        create_dir(&dir)?;
        write_text(&key_path, &ca.ca_key.serialize_pem())?;
        write_text(&cert_path, &ca.root_pem)?;
        Ok(ca)
    }

    /// A CA that lives only in memory (tests).
    pub fn generate() -> Result<EmulatorCa, IdentityError> {
        let ca_key = KeyPair::generate()?;
        let params = ca_params();
        let certificate = params.self_signed(&ca_key)?;
        Ok(EmulatorCa {
            ca_key,
            ca_params: params,
            root_pem: certificate.pem(),
            root_der: certificate.der().as_ref().to_vec(),
        })
    }

    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// A device certificate signed by the CA, with AWS's subject (`CN=AWS IoT Certificate`) and a fresh ECDSA
    /// P-256 key.
    pub fn issue_device_certificate(&self) -> Result<IssuedCertificate, IdentityError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, AWS_ISSUED_COMMON_NAME);
        params.distinguished_name = name;
        params.serial_number = Some(random_serial());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let certificate = params.signed_by(&key, &self.issuer())?;
        let der = certificate.der().as_ref().to_vec();
        Ok(IssuedCertificate {
            certificate_id: certificate_id(&der),
            certificate_pem: certificate.pem(),
            certificate_der: der,
            private_key_pem: key.serialize_pem(),
            public_key_pem: key.public_key_pem(),
        })
    }

    /// `CreateCertificateFromCsr`: a certificate for the CSR's public key and subject, signed by the CA. The CSR's
    /// signature is verified (proof that the requester holds the key); a CSR asking to be a CA gets a leaf anyway.
    /// Returns the PEM and the DER.
    pub fn sign_certificate_request(
        &self,
        csr_pem: &str,
    ) -> Result<(String, Vec<u8>), IdentityError> {
        let mut request = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)?;
        request.params.serial_number = Some(random_serial());
        request.params.is_ca = IsCa::NoCa;
        if request.params.extended_key_usages.is_empty() {
            request.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let certificate = request.signed_by(&self.issuer())?;
        Ok((certificate.pem(), certificate.der().as_ref().to_vec()))
    }

    /// The broker's server certificate for `names` (DNS names or IP addresses, e.g. `localhost`, `127.0.0.1`).
    pub fn issue_server_identity(&self, names: &[String]) -> Result<ServerIdentity, IdentityError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "iot-emulator broker");
        params.distinguished_name = name;
        params.serial_number = Some(random_serial());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let certificate = params.signed_by(&key, &self.issuer())?;
        Ok(ServerIdentity {
            certificate_der: certificate.der().as_ref().to_vec(),
            private_key_der: key.serialize_der(),
            certificate_pem: certificate.pem(),
            private_key_pem: key.serialize_pem(),
        })
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.ca_params, &self.ca_key)
    }
}

/// The CA's parameters are fixed, so an issuer rebuilt from them and the stored key signs certificates that
/// chain to the stored root certificate.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    name.push(DnType::OrganizationName, CA_ORGANIZATION);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn random_serial() -> rcgen::SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive and non-zero leading byte: a DER INTEGER that every parser reads the same way.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    rcgen::SerialNumber::from_slice(&bytes)
}

fn read_text(path: &Path) -> Result<String, IdentityError> {
    fs::read_to_string(path).map_err(|source| IdentityError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write_text(path: &Path, text: &str) -> Result<(), IdentityError> {
    fs::write(path, text).map_err(|source| IdentityError::Io {
        path: path.to_owned(),
        source,
    })
}

fn create_dir(path: &Path) -> Result<(), IdentityError> {
    fs::create_dir_all(path).map_err(|source| IdentityError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_certificate_id_is_sha256_of_der_and_context_has_aws_subject() {
        let ca = EmulatorCa::generate().unwrap();
        let device = ca.issue_device_certificate().unwrap();
        assert_eq!(device.certificate_id.len(), 64);
        assert_eq!(
            device.certificate_id,
            certificate_id(&pem_to_der(&device.certificate_pem).unwrap())
        );
        let context = certificate_context(&device.certificate_der);
        assert_eq!(context.id, device.certificate_id);
        assert_eq!(
            context.subject.get(&DnAttribute::CommonName),
            Some(&vec![AWS_ISSUED_COMMON_NAME.to_owned()])
        );
        assert_eq!(
            context.issuer.get(&DnAttribute::CommonName),
            Some(&vec![CA_COMMON_NAME.to_owned()])
        );
        assert!(context.serial_number.is_some());
    }

    #[test]
    fn a_reloaded_ca_issues_certificates_that_chain_to_the_stored_root() {
        let dir = tempfile::tempdir().unwrap();
        let first = EmulatorCa::load_or_create(dir.path()).unwrap();
        let second = EmulatorCa::load_or_create(dir.path()).unwrap();
        assert_eq!(first.root_pem(), second.root_pem());
        let device = second.issue_device_certificate().unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&device.certificate_der).unwrap();
        let (_, root) = x509_parser::parse_x509_certificate(first.root_der()).unwrap();
        // Chain verification itself is exercised by the mTLS tests (tests/broker_*.rs).
        assert_eq!(parsed.issuer().to_string(), root.subject().to_string());
    }
}
