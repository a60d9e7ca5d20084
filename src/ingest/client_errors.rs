//! The client side of a connection to an MQTT broker, shared by `provdb serve --broker` and
//! `provdb publish`: TLS set-up (the CA file is checked before any connection is tried) and
//! the classification of connection failures into permanent ones (wrong credentials, a
//! certificate that fails verification: retrying cannot help, so the program exits with a
//! message naming the broker, the cause and the fix) and transient ones (broker down or
//! restarting: retried with backoff).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rumqttc::tokio_rustls::rustls;
use rumqttc::{ConnectReturnCode, ConnectionError, TlsConfiguration, TlsError, Transport};
use rustls::pki_types::pem;

use super::config::{BrokerAuth, BrokerTarget, BrokerUrl, IngestConfig};
use super::tls::{self, PemProblem};

/// What a failed connection attempt means for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Retrying cannot help: stop with this message (broker, cause, fix).
    Permanent(String),
    /// Worth retrying with backoff (broker down, restarting, network trouble).
    Transient(String),
}

impl Failure {
    /// The message (it names the broker).
    pub(crate) fn message(&self) -> &str {
        match self {
            Failure::Permanent(m) | Failure::Transient(m) => m,
        }
    }
}

/// The connection a failure belongs to, to name it and its settings in messages.
#[derive(Debug, Clone)]
pub(crate) struct ClientTarget {
    /// The broker.
    pub url: BrokerUrl,
    /// Credentials and CA file given.
    pub auth: BrokerAuth,
    /// MQTT client id used.
    pub client_id: String,
}

impl ClientTarget {
    /// The broker connection of the ingest service.
    pub(crate) fn of_service(config: &IngestConfig) -> ClientTarget {
        let url = match &config.broker {
            BrokerTarget::External(url) => url.clone(),
            BrokerTarget::Embedded { listen } => BrokerUrl {
                host: listen.ip().to_string(),
                port: listen.port(),
                tls: false,
            },
        };
        ClientTarget {
            url,
            auth: config.auth.clone(),
            client_id: config.client_id.clone(),
        }
    }
}

/// Classifies one connection failure reported by rumqttc's event loop.
pub(crate) fn classify(error: &ConnectionError, target: &ClientTarget) -> Failure {
    let url = &target.url;
    match error {
        ConnectionError::ConnectionRefused(code) => classify_refusal(*code, target),
        ConnectionError::Tls(TlsError::Io(io)) => match rustls_error(io) {
            Some(tls) => Failure::Permanent(tls_failure(tls, target)),
            // The TCP connection broke during the handshake: the broker may be restarting,
            // but a plain MQTT listener (mosquitto) also just drops a TLS hello.
            None => Failure::Transient(format!(
                "cannot reach the broker at {url}: {io} during the TLS handshake (if this \
                 repeats, check that port {} is a TLS listener)",
                url.port
            )),
        },
        ConnectionError::Tls(TlsError::DNSName(_)) => Failure::Permanent(format!(
            "cannot connect to the broker at {url} over TLS: `{}` is not a valid DNS name or IP \
             address (check the host of the broker URL)",
            url.host
        )),
        ConnectionError::Tls(other) => Failure::Permanent(format!(
            "cannot set up TLS for the broker at {url}: {other} (check --ca-file)"
        )),
        ConnectionError::Io(io) => {
            Failure::Transient(format!("cannot reach the broker at {url}: {io}"))
        }
        other => Failure::Transient(format!("connection to the broker at {url} failed: {other}")),
    }
}

/// Classifies a CONNACK that refused the connection.
pub(crate) fn classify_refusal(code: ConnectReturnCode, target: &ClientTarget) -> Failure {
    let url = &target.url;
    let who = match &target.auth.username {
        Some(user) => format!("user '{user}'"),
        None => "an anonymous connection".to_owned(),
    };
    let credentials_fix = match &target.auth.username {
        Some(_) => "check --username/--password",
        None => "give --username and --password",
    };
    match code {
        ConnectReturnCode::BadUserNamePassword => Failure::Permanent(format!(
            "the broker at {url} refused {who}: bad user name or password ({credentials_fix})"
        )),
        ConnectReturnCode::NotAuthorized => Failure::Permanent(format!(
            "the broker at {url} refused {who}: not authorized ({credentials_fix}; the \
             broker's configuration must let that user connect)"
        )),
        ConnectReturnCode::BadClientId => Failure::Permanent(format!(
            "the broker at {url} refused client id '{}' (choose another client id)",
            target.client_id
        )),
        ConnectReturnCode::RefusedProtocolVersion => Failure::Permanent(format!(
            "the broker at {url} does not accept MQTT 3.1.1, the protocol provdb speaks \
             (enable it on the broker)"
        )),
        ConnectReturnCode::ServiceUnavailable => {
            Failure::Transient(format!("the broker at {url} is unavailable"))
        }
        ConnectReturnCode::Success => Failure::Transient(format!(
            "the broker at {url} answered success but dropped the connection"
        )),
    }
}

/// The rustls error inside an I/O error of the TLS handshake (tokio-rustls wraps it so).
fn rustls_error(io: &std::io::Error) -> Option<&rustls::Error> {
    io.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

fn tls_failure(error: &rustls::Error, target: &ClientTarget) -> String {
    let url = &target.url;
    match error {
        rustls::Error::InvalidCertificate(_) => {
            let fix = match &target.auth.ca_file {
                Some(ca) => format!(
                    "check --ca-file: {} must be the CA that signed the broker's certificate, \
                     and that certificate must name the host `{}`",
                    ca.display(),
                    url.host
                ),
                None => format!(
                    "the system's CA certificates were used: give --ca-file with the CA that \
                     signed the broker's certificate, which must name the host `{}`",
                    url.host
                ),
            };
            format!(
                "the TLS certificate of the broker at {url} failed verification: {error} ({fix})"
            )
        }
        rustls::Error::InvalidMessage(_) => format!(
            "the broker at {url} did not answer with TLS: {error} (is port {} a TLS listener? \
             use mqtt:// for a plain one)",
            url.port
        ),
        _ => format!("the TLS handshake with the broker at {url} failed: {error}"),
    }
}

/// Why a CA file cannot be used (the message names the broker, the file, the problem and the
/// fix).
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot use the CA file {} for the broker at {broker}: {problem} (--ca-file must be the \
     PEM certificate of the CA that signed the broker's certificate)",
    path.display()
)]
pub struct CaFileError {
    broker: String,
    path: PathBuf,
    problem: CaFileProblem,
}

/// What is wrong with a CA file.
#[derive(Debug, thiserror::Error)]
enum CaFileProblem {
    #[error("{0}")]
    Unreadable(std::io::Error),
    #[error("it is larger than {} bytes", tls::MAX_PEM_FILE_BYTES)]
    TooLarge,
    #[error("invalid PEM: {0}")]
    BadPem(pem::Error),
    #[error("it holds no certificate (no -----BEGIN CERTIFICATE----- block)")]
    NoCertificate,
    #[error("none of its {0} certificate(s) is a valid X.509 certificate")]
    NoValidCertificate(usize),
}

/// Why TLS cannot be set up at all (before any connection).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The CA file given is unusable.
    #[error(transparent)]
    CaFile(#[from] CaFileError),
    /// No CA file was given and the system has no usable CA certificates.
    #[error(
        "cannot verify the broker at {broker}: no usable system CA certificates ({detail}); \
         give --ca-file with the CA that signed the broker's certificate"
    )]
    NoSystemCertificates {
        /// The broker's URL.
        broker: String,
        /// Why the system's certificates are unusable.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("cannot set up TLS for the broker at {broker}: {error}")]
    Config {
        /// The broker's URL.
        broker: String,
        /// What rustls refused.
        error: rustls::Error,
    },
}

/// The TLS transport for `broker`: trusting only the CA certificates of `ca_file` when given,
/// otherwise the system's. Every problem with the file is reported here, before connecting.
pub(crate) fn tls_transport(
    broker: &BrokerUrl,
    ca_file: Option<&Path>,
) -> Result<Transport, TlsSetupError> {
    let roots = match ca_file {
        Some(path) => ca_file_roots(path).map_err(|problem| CaFileError {
            broker: broker.to_string(),
            path: path.to_owned(),
            problem,
        })?,
        None => system_roots(broker)?,
    };
    let config = rustls::ClientConfig::builder_with_provider(tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsSetupError::Config {
            broker: broker.to_string(),
            error,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(config),
    )))
}

fn ca_file_roots(path: &Path) -> Result<rustls::RootCertStore, CaFileProblem> {
    let certs = tls::certificates(path).map_err(|problem| match problem {
        PemProblem::Unreadable(e) => CaFileProblem::Unreadable(e),
        PemProblem::TooLarge => CaFileProblem::TooLarge,
        PemProblem::BadPem(e) => CaFileProblem::BadPem(e),
        PemProblem::Missing => CaFileProblem::NoCertificate,
    })?;
    let total = certs.len();
    let mut roots = rustls::RootCertStore::empty();
    let (valid, _invalid) = roots.add_parsable_certificates(certs);
    if valid == 0 {
        return Err(CaFileProblem::NoValidCertificate(total));
    }
    Ok(roots)
}

/// The system's CA certificates (rumqttc's own default panics on an unreadable one).
fn system_roots(broker: &BrokerUrl) -> Result<rustls::RootCertStore, TlsSetupError> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(loaded.certs);
    if roots.is_empty() {
        let detail = match loaded.errors.first() {
            Some(e) => e.to_string(),
            None => "none found".to_owned(),
        };
        return Err(TlsSetupError::NoSystemCertificates {
            broker: broker.to_string(),
            detail,
        });
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> BrokerUrl {
        BrokerUrl::parse("mqtts://127.0.0.1:8883").expect("url")
    }

    fn auth(user: Option<&str>, ca: Option<&str>) -> BrokerAuth {
        BrokerAuth {
            username: user.map(str::to_owned),
            password: Some("secret".to_owned()),
            ca_file: ca.map(PathBuf::from),
        }
    }

    fn classify_with(error: ConnectionError, auth: &BrokerAuth) -> Failure {
        classify(
            &error,
            &ClientTarget {
                url: url(),
                auth: auth.clone(),
                client_id: "provdb-serve".to_owned(),
            },
        )
    }

    fn permanent(f: Failure) -> String {
        match f {
            Failure::Permanent(m) => m,
            Failure::Transient(m) => panic!("expected a permanent failure, got transient: {m}"),
        }
    }

    #[test]
    fn refused_credentials_are_permanent_and_name_broker_user_and_fix() {
        for code in [
            ConnectReturnCode::BadUserNamePassword,
            ConnectReturnCode::NotAuthorized,
        ] {
            let m = permanent(classify_with(
                ConnectionError::ConnectionRefused(code),
                &auth(Some("x"), None),
            ));
            assert!(m.contains("mqtts://127.0.0.1:8883"), "{m}");
            assert!(m.contains("user 'x'"), "{m}");
            assert!(m.contains("--username/--password"), "{m}");
        }
        let m = permanent(classify_with(
            ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized),
            &auth(None, None),
        ));
        assert!(m.contains("anonymous"), "{m}");
    }

    #[test]
    fn certificate_verification_failure_is_permanent_and_names_the_ca_file() {
        let rustls_error =
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls_error);
        let m = permanent(classify_with(
            ConnectionError::Tls(TlsError::Io(io)),
            &auth(None, Some("/etc/ca.pem")),
        ));
        assert!(m.contains("failed verification"), "{m}");
        assert!(m.contains("/etc/ca.pem"), "{m}");
    }

    #[test]
    fn unreachable_broker_is_transient() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            classify_with(ConnectionError::Io(refused), &auth(None, None)),
            Failure::Transient(_)
        ));
        // A connection reset during the TLS handshake carries no rustls error.
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(matches!(
            classify_with(ConnectionError::Tls(TlsError::Io(reset)), &auth(None, None)),
            Failure::Transient(_)
        ));
        assert!(matches!(
            classify_with(
                ConnectionError::ConnectionRefused(ConnectReturnCode::ServiceUnavailable),
                &auth(None, None)
            ),
            Failure::Transient(_)
        ));
        assert!(matches!(
            classify_with(ConnectionError::NetworkTimeout, &auth(None, None)),
            Failure::Transient(_)
        ));
    }
}
