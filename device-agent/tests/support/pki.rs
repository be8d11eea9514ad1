//! A throw-away PKI (rcgen): a CA, a server certificate for 127.0.0.1, client certificates per thing.

use super::*;

/// File paths of one client identity.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA, a server certificate for 127.0.0.1 and client certificates (CN = thing name).
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub server: Identity,
    ca_params: CertificateParams,
    ca_key: KeyPair,
}

fn write_private(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

impl Pki {
    pub fn new(dir: &Path) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "device-agent test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, ca_cert.pem()).unwrap();
        let mut pki = Self {
            dir: dir.to_path_buf(),
            ca_cert: ca_path,
            server: Identity {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            ca_params,
            ca_key,
        };
        pki.server = pki.issue("server", &["127.0.0.1", "localhost"], None);
        pki
    }

    /// Issue a certificate; `not_after` lets a test make an expired one.
    pub fn issue(
        &self,
        common_name: &str,
        sans: &[&str],
        not_after: Option<(i32, u8, u8)>,
    ) -> Identity {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        if let Some((y, m, d)) = not_after {
            params.not_before = rcgen::date_time_ymd(y - 1, m, d);
            params.not_after = rcgen::date_time_ymd(y, m, d);
        }
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let identity = Identity {
            cert: self.dir.join(format!("{common_name}.cert.pem")),
            key: self.dir.join(format!("{common_name}.key.pem")),
        };
        std::fs::write(&identity.cert, cert.pem()).unwrap();
        write_private(&identity.key, &key.serialize_pem());
        identity
    }

    /// A fresh key that belongs to no certificate.
    pub fn stray_key(&self, name: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.stray.key.pem"));
        write_private(&path, &KeyPair::generate().unwrap().serialize_pem());
        path
    }
}

pub fn tls_transport(pki: &Pki, identity: &Identity) -> Transport {
    Transport::tls_with_config(TlsConfiguration::Simple {
        ca: std::fs::read(&pki.ca_cert).unwrap(),
        alpn: None,
        client_auth: Some((
            std::fs::read(&identity.cert).unwrap(),
            std::fs::read(&identity.key).unwrap(),
        )),
    })
}
