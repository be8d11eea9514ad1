//! The broker's mutual-TLS configuration: a client certificate is required, must chain to the emulator CA, and
//! must be registered and ACTIVE, otherwise the TLS handshake fails, as AWS IoT refuses unknown, INACTIVE and
//! REVOKED certificates before any MQTT is exchanged.
//!
//! Like AWS (reference 4.1, observed), the status is checked at handshake time only: deactivating a certificate
//! does not cut a connection that is already open.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use super::{EmulatorCa, IdentityError, ServerIdentity, certificate_id};
use crate::registry::{CertificateStatus, Registry};

/// Chains to the emulator CA (webpki) and then requires an ACTIVE registry entry for the certificate id.
#[derive(Debug)]
pub struct RegisteredCertificateVerifier {
    chain: Arc<dyn ClientCertVerifier>,
    registry: Arc<Registry>,
}

impl RegisteredCertificateVerifier {
    pub fn new(ca: &EmulatorCa, registry: Arc<Registry>) -> Result<Self, IdentityError> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(ca.root_der().to_vec()))?;
        let chain = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()?;
        Ok(RegisteredCertificateVerifier { chain, registry })
    }
}

impl ClientCertVerifier for RegisteredCertificateVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)?;
        let id = certificate_id(end_entity.as_ref());
        match self.registry.certificate_status(&id) {
            Some(CertificateStatus::Active) => Ok(verified),
            Some(CertificateStatus::Revoked) => {
                tracing::info!(certificate_id = %id, "refused a REVOKED certificate");
                Err(rustls::Error::InvalidCertificate(CertificateError::Revoked))
            }
            Some(status) => {
                tracing::info!(certificate_id = %id, ?status, "refused an inactive certificate");
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ))
            }
            None => {
                tracing::info!(certificate_id = %id, "refused an unregistered certificate");
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// The rustls server configuration for the MQTT listener (TLS 1.2 and 1.3, ring).
///
/// No ALPN list is set, so clients may offer `x-amzn-mqtt-ca` (AWS port 443) or nothing (port 8883).
pub fn server_tls_config(
    ca: &EmulatorCa,
    server: &ServerIdentity,
    registry: Arc<Registry>,
) -> Result<Arc<rustls::ServerConfig>, IdentityError> {
    let verifier = Arc::new(RegisteredCertificateVerifier::new(ca, registry)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server.certificate_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.private_key_der.clone())),
        )?;
    Ok(Arc::new(config))
}
