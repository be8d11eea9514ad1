//! Mutual TLS setup with rustls and the `ring` provider (no aws-lc, no OpenSSL: cross-compiles with zig).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::AgentConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error(
        "cannot read {what} {path}: {source}; check the path in [tls] and the file's permissions"
    )]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{what} {path} holds no PEM {expected}; it must contain a `-----BEGIN {expected}-----` block"
    )]
    NoPem {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error(
        "private key {path} is not a PEM key ({message}); AWS gives `private.pem.key` (BEGIN RSA PRIVATE KEY), \
         PKCS#8 and SEC1 EC keys work too"
    )]
    Key { path: PathBuf, message: String },
    #[error(
        "root CA {path} holds no usable certificate: {message}; download AmazonRootCA1.pem again"
    )]
    RootCa { path: PathBuf, message: String },
    #[error(
        "certificate {cert} and key {key} do not belong together ({message}); copy the key that was created \
         with this certificate"
    )]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

pub fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// All certificates in a PEM file (device cert first, then any chain).
pub fn load_certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = read_file(what, path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsSetupError::NoPem {
            what,
            path: path.to_path_buf(),
            expected: "CERTIFICATE",
        });
    }
    Ok(certs)
}

pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let pem = read_file("private key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsSetupError::Key {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Check that the key is the certificate's key (compares public keys; rustls `CertifiedKey::keys_match`).
pub fn check_key_matches(
    cert_path: &Path,
    key_path: &Path,
    certs: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<(), TlsSetupError> {
    let mismatch = |message: String| TlsSetupError::Mismatch {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
        message,
    };
    let signing_key = crypto_provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsSetupError::Key {
            path: key_path.to_path_buf(),
            message: e.to_string(),
        })?;
    let certified = rustls::sign::CertifiedKey::new(certs.to_vec(), signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(()),
        // ring cannot derive every public key; rustls then cannot tell, and the broker will.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(e) => Err(mismatch(e.to_string())),
    }
}

/// The client TLS configuration: server verified against `root_ca`, our certificate + key, ALPN on 443.
pub fn client_config(config: &AgentConfig) -> Result<ClientConfig, TlsSetupError> {
    let roots_pem = load_certificates("root CA", &config.tls.root_ca)?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(roots_pem);
    if added == 0 {
        return Err(TlsSetupError::RootCa {
            path: config.tls.root_ca.clone(),
            message: "no parsable certificate".into(),
        });
    }
    let certs = load_certificates("certificate", &config.tls.cert)?;
    let key = load_private_key(&config.tls.key)?;
    check_key_matches(&config.tls.cert, &config.tls.key, &certs, &key)?;
    let mut tls = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::RootCa {
            path: config.tls.root_ca.clone(),
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| TlsSetupError::Key {
            path: config.tls.key.clone(),
            message: e.to_string(),
        })?;
    if let Some(alpn) = config.alpn() {
        tls.alpn_protocols = vec![alpn.into_bytes()];
    }
    Ok(tls)
}
