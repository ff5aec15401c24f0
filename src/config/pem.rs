//! PEM certificates in configuration (`CACerts`, `AWS_CA_CERTS`-like variables): parsed at
//! decode time, so a bad certificate is a config problem, not a failure at the first request.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// PEM CA certificates, at least one.
pub fn parse_ca_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("not PEM certificates: {err}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}
