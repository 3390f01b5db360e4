//! HTTPS: a certificate chain and private key read from PEM files, served
//! through rustls, and reloaded from the same files on request (the binary
//! asks on SIGHUP) without touching connections already open.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why a certificate or key could not be used. Messages name the file and
/// the problem, never key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{}: cannot read it ({kind}); check --tls-cert / --tls-key (ATOM_TLS_CERT / ATOM_TLS_KEY)", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        kind: io::ErrorKind,
    },
    /// A file holds no PEM block of the kind needed.
    #[error("{}: no {what} in PEM form (-----BEGIN ...-----) found", path.display())]
    NotPem {
        /// The file.
        path: PathBuf,
        /// "certificate" or "private key".
        what: &'static str,
    },
    /// rustls refused the pair (e.g. the key does not match the
    /// certificate, or an unsupported key type).
    #[error("{} and {}: not a usable certificate and key ({problem})", cert.display(), key.display())]
    Refused {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's description.
        problem: String,
    },
}

/// A TLS configuration that can be reloaded from its files.
#[derive(Clone)]
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the certificate chain (`cert`, leaf first) and its private key
    /// (`key`, PKCS#8, PKCS#1 or SEC1) from PEM files.
    pub fn load(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Result<Tls, TlsError> {
        let (cert, key) = (cert.into(), key.into());
        let config = read_config(&cert, &key)?;
        Ok(Tls {
            cert,
            key,
            current: Arc::new(RwLock::new(config)),
        })
    }

    /// Reads the files again. On success new connections get the new
    /// certificate; on failure the one in use stays. Connections already
    /// open keep the certificate they were made with either way.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = read_config(&self.cert, &self.key)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        Ok(())
    }

    /// An acceptor with the configuration in use now.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        let config = Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        TlsAcceptor::from(config)
    }
}

/// The largest certificate chain or key file read: a chain of a few
/// certificates is a few KiB.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// The bytes of a PEM file, read to [`MAX_PEM_BYTES`] and no further.
fn read_pem(path: &Path, secret: bool) -> Result<zeroize::Zeroizing<Vec<u8>>, TlsError> {
    let unreadable = |e: std::io::Error| TlsError::Unreadable {
        path: path.to_owned(),
        kind: e.kind(),
    };
    if secret {
        warn_if_readable_by_others(path);
        atom_io::read_bounded_secret(path, MAX_PEM_BYTES).map_err(unreadable)
    } else {
        atom_io::read_bounded(path, MAX_PEM_BYTES)
            .map(zeroize::Zeroizing::new)
            .map_err(unreadable)
    }
}

/// A private key readable by group or others is served all the same (the
/// operator may have reasons), but said once at each load, as for the
/// other secret files.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                file = %path.display(),
                "the TLS private key is readable by group or others; restrict it with: chmod 600 {}",
                path.display()
            );
        }
    }
}

fn read_config(cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let unreadable = |path: &Path| {
        let path = path.to_owned();
        move |e: rustls_pki_types::pem::Error| match e {
            rustls_pki_types::pem::Error::Io(e) => TlsError::Unreadable {
                path,
                kind: e.kind(),
            },
            _ => TlsError::NotPem {
                path,
                what: "certificate",
            },
        }
    };
    let cert_pem = read_pem(cert_path, false)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(unreadable(cert_path))?;
    if chain.is_empty() {
        return Err(TlsError::NotPem {
            path: cert_path.to_owned(),
            what: "certificate",
        });
    }
    let key_pem = read_pem(key_path, true)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::Io(e) => TlsError::Unreadable {
            path: key_path.to_owned(),
            kind: e.kind(),
        },
        _ => TlsError::NotPem {
            path: key_path.to_owned(),
            what: "private key",
        },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| TlsError::Refused {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
            problem: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
