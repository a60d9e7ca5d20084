//! TLS material, in one place for the broker client and the embedded listener: bounded reads
//! of PEM files and rustls's crypto provider.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use rumqttc::tokio_rustls::rustls;
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Largest PEM file read (a CA bundle of every public CA is about 200 KiB).
pub(crate) const MAX_PEM_FILE_BYTES: u64 = 16 << 20;

/// Why a PEM file gave nothing usable.
#[derive(Debug)]
pub(crate) enum PemProblem {
    /// It could not be read.
    Unreadable(std::io::Error),
    /// It is larger than [`MAX_PEM_FILE_BYTES`].
    TooLarge,
    /// It is not valid PEM.
    BadPem(pem::Error),
    /// It holds no object of the kind wanted.
    Missing,
}

impl std::fmt::Display for PemProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PemProblem::Unreadable(e) => write!(f, "cannot be read: {e}"),
            PemProblem::TooLarge => write!(f, "is larger than {MAX_PEM_FILE_BYTES} bytes"),
            PemProblem::BadPem(e) => write!(f, "is not valid PEM: {e}"),
            PemProblem::Missing => write!(f, "holds no PEM object of the kind needed"),
        }
    }
}

/// Reads a file of at most [`MAX_PEM_FILE_BYTES`].
pub(crate) fn read_pem_file(path: &Path) -> Result<Vec<u8>, PemProblem> {
    let file = std::fs::File::open(path).map_err(PemProblem::Unreadable)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(PemProblem::Unreadable)?;
    if bytes.len() as u64 > MAX_PEM_FILE_BYTES {
        return Err(PemProblem::TooLarge);
    }
    Ok(bytes)
}

/// The certificates of a PEM file (at least one).
pub(crate) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemProblem> {
    let bytes = read_pem_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PemProblem::BadPem)?;
    if certs.is_empty() {
        return Err(PemProblem::Missing);
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemProblem> {
    let bytes = read_pem_file(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => PemProblem::Missing,
        other => PemProblem::BadPem(other),
    })
}

/// The crypto provider, named explicitly: rustls's `builder()` panics when it cannot pick one.
pub(crate) fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}
