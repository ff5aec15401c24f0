//! TLS for the listener (targets and health) and for HTTPS sinks, with rustls — the TLS stack
//! the AWS SDK already brings.
//!
//! The listener's certificate and key are PEM files, read again when either file changes (checked
//! at most once a second, on handshakes), so cert-manager renewals take effect without a restart;
//! a broken new pair is reported and the previous one kept. Sinks are verified against the
//! system's roots plus the CA certificates a destination names (Knative's `CACerts`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::pem::parse_ca_pem;

/// Reads a certificate chain and key from PEM files.
fn load_pair(cert_file: &PathBuf, key_file: &PathBuf) -> Result<Arc<CertifiedKey>, String> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| {
            format!(
                "cannot read certificates from {}: {err}",
                cert_file.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|err| {
        format!(
            "cannot read a private key from {}: {err}",
            key_file.display()
        )
    })?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|err| format!("unusable private key in {}: {err}", key_file.display()))?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

fn modified(file: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(file).and_then(|m| m.modified()).ok()
}

struct Loaded {
    stamps: (Option<SystemTime>, Option<SystemTime>),
    key: Arc<CertifiedKey>,
    checked: Instant,
}

/// Serves the current pair, reloading it when the files change.
struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    loaded: Mutex<Loaded>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_file", &self.cert_file)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.checked.elapsed() >= Duration::from_secs(1) {
            loaded.checked = Instant::now();
            let stamps = (modified(&self.cert_file), modified(&self.key_file));
            if stamps != loaded.stamps {
                match load_pair(&self.cert_file, &self.key_file) {
                    Ok(key) => {
                        tracing::info!(cert = %self.cert_file.display(), "TLS certificate reloaded");
                        loaded.key = key;
                        loaded.stamps = stamps;
                    }
                    // Mid-rotation (one file written, not the other) or broken: keep serving.
                    Err(err) => {
                        tracing::warn!(error = %err, "TLS certificate not reloaded; keeping the previous one")
                    }
                }
            }
        }
        Some(loaded.key.clone())
    }
}

/// A TLS acceptor for the listener (HTTP/2 and HTTP/1.1 by ALPN).
pub fn acceptor(cert_file: PathBuf, key_file: PathBuf) -> Result<TlsAcceptor, String> {
    let key = load_pair(&cert_file, &key_file)?;
    let resolver = ReloadingCert {
        cert_file,
        key_file,
        loaded: Mutex::new(Loaded {
            stamps: (None, None),
            key,
            checked: Instant::now(),
        }),
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| err.to_string())?
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Client TLS for sinks: the system's roots plus `extra_ca_pem` (PEM certificates).
pub fn client_config(extra_ca_pem: Option<&str>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(pem) = extra_ca_pem {
        let certs = parse_ca_pem(pem)?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|err| format!("unusable CA certificate: {err}"))?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| err.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth())
}
