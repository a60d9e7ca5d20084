//! Who may use the page: loopback by default; any other address needs a password file (HTTP
//! basic authentication against `serve`'s mosquitto_passwd format) or an explicit
//! `--allow-anonymous`. Without a password, requests must name a loopback host, so that a web
//! page elsewhere cannot read the archive through the browser (DNS rebinding).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use parking_lot::Mutex;
use provdb::ingest::passwords::PasswordFileError;
use provdb::ingest::PasswordFile;

/// Accepted `Authorization` headers kept so that PBKDF2 runs once per user, not per request.
const ACCEPTED_CACHE: usize = 64;

/// Why `provdb ui` refuses to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// A non-loopback address without authentication.
    #[error(
        "refusing to serve the archive on {listen} without authentication: anyone who can \
         reach it could read every machine's provenance. Give --password-file FILE (made with \
         mosquitto_passwd), or --allow-anonymous if the network is trusted"
    )]
    Unauthenticated {
        /// The address.
        listen: SocketAddr,
    },
    /// The password file is unusable.
    #[error(transparent)]
    Passwords(#[from] PasswordFileError),
}

/// The access rule of one `provdb ui`.
#[derive(Clone)]
pub struct Access {
    passwords: Option<Arc<PasswordFile>>,
    accepted: Arc<Mutex<HashSet<String>>>,
    /// Without a password on loopback: only requests whose Host is loopback.
    loopback_hosts_only: bool,
    bound_port: u16,
}

/// The outcome of checking one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Allowed,
    /// 401 with a basic-authentication challenge.
    NeedsPassword,
    /// 403: a Host header that is not this loopback server.
    ForeignHost,
}

impl Access {
    /// The rule for `listen`, or why it is refused.
    pub fn new(
        listen: SocketAddr,
        password_file: Option<&Path>,
        allow_anonymous: bool,
    ) -> Result<Access, AccessError> {
        let loopback = listen.ip().is_loopback();
        if password_file.is_none() && !allow_anonymous && !loopback {
            return Err(AccessError::Unauthenticated { listen });
        }
        let passwords = password_file
            .map(PasswordFile::read)
            .transpose()?
            .map(Arc::new);
        Ok(Access {
            loopback_hosts_only: passwords.is_none() && loopback,
            passwords,
            accepted: Arc::new(Mutex::new(HashSet::new())),
            bound_port: listen.port(),
        })
    }

    /// The same rule once the listener is bound (its real port, when 0 was asked).
    pub fn with_bound(mut self, bound: SocketAddr) -> Access {
        self.bound_port = bound.port();
        self
    }

    /// Checks a request's `Host` and `Authorization` headers.
    pub fn check(&self, host: Option<&str>, authorization: Option<&str>) -> Verdict {
        if self.loopback_hosts_only && !host.is_some_and(|h| self.is_loopback_host(h)) {
            return Verdict::ForeignHost;
        }
        let Some(passwords) = &self.passwords else {
            return Verdict::Allowed;
        };
        let Some(header) = authorization else {
            return Verdict::NeedsPassword;
        };
        if self.accepted.lock().contains(header) {
            return Verdict::Allowed;
        }
        let Some((user, password)) = basic_credentials(header) else {
            return Verdict::NeedsPassword;
        };
        if !passwords.verify(&user, password.as_bytes()) {
            return Verdict::NeedsPassword;
        }
        let mut accepted = self.accepted.lock();
        if accepted.len() >= ACCEPTED_CACHE {
            accepted.clear();
        }
        accepted.insert(header.to_owned());
        Verdict::Allowed
    }

    fn is_loopback_host(&self, host: &str) -> bool {
        let (name, port) = split_host(host);
        if port.is_some_and(|p| p != self.bound_port) {
            return false;
        }
        name.eq_ignore_ascii_case("localhost")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` -> (host, port). A port that is not a number is
/// `Some(0)`, which matches no server.
fn split_host(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        let Some((name, after)) = rest.split_once(']') else {
            return (host, None);
        };
        return match after.strip_prefix(':') {
            Some(p) => (name, Some(p.parse().unwrap_or(0))),
            None => (name, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, p)) => (name, Some(p.parse().unwrap_or(0))),
        None => (host, None),
    }
}

/// `Basic base64(user:password)` -> (user, password).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn non_loopback_needs_a_password_or_consent() {
        assert!(matches!(
            Access::new(addr("0.0.0.0:8080"), None, false),
            Err(AccessError::Unauthenticated { .. })
        ));
        assert!(Access::new(addr("0.0.0.0:8080"), None, true).is_ok());
        assert!(Access::new(addr("127.0.0.1:8080"), None, false).is_ok());
        assert!(Access::new(addr("[::1]:8080"), None, false).is_ok());
    }

    #[test]
    fn loopback_without_password_checks_the_host() {
        let a = Access::new(addr("127.0.0.1:8080"), None, false).expect("access");
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
        ] {
            assert_eq!(a.check(Some(ok), None), Verdict::Allowed, "{ok}");
        }
        for bad in ["evil.example:8080", "127.0.0.1:9999", "127.0.0.1:x", "[::1"] {
            assert_eq!(a.check(Some(bad), None), Verdict::ForeignHost, "{bad}");
        }
        assert_eq!(a.check(None, None), Verdict::ForeignHost);
    }

    proptest::proptest! {
        /// Any Host and Authorization text: no panic, and never let in without the password.
        #[test]
        fn hostile_headers_are_refused(host in ".{0,80}", auth in ".{0,120}") {
            let dir = tempfile::tempdir().expect("tempdir");
            let file = dir.path().join("ui.passwd");
            std::fs::write(&file, "alice:secret\n").expect("write");
            let a = Access::new(addr("0.0.0.0:8080"), Some(&file), false).expect("access");
            let right = base64::engine::general_purpose::STANDARD.encode("alice:secret");
            let verdict = a.check(Some(&host), Some(&auth));
            proptest::prop_assert_eq!(
                verdict == Verdict::Allowed,
                basic_credentials(&auth).is_some_and(|(u, p)| u == "alice" && p == "secret"),
                "{} vs {}", auth, right
            );
            let loopback = Access::new(addr("127.0.0.1:8080"), None, false).expect("access");
            let _ = loopback.check(Some(&host), Some(&auth));
            let _ = split_host(&host);
        }
    }

    #[test]
    fn basic_authentication_against_the_password_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("ui.passwd");
        std::fs::write(&file, "alice:secret\n").expect("write");
        let a = Access::new(addr("0.0.0.0:8080"), Some(&file), false).expect("access");
        let header = |creds: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(creds)
            )
        };
        assert_eq!(a.check(Some("x"), None), Verdict::NeedsPassword);
        assert_eq!(
            a.check(Some("x"), Some(&header("alice:wrong"))),
            Verdict::NeedsPassword
        );
        assert_eq!(
            a.check(Some("x"), Some(&header("alice:secret"))),
            Verdict::Allowed
        );
        // Cached, and still exact.
        assert_eq!(
            a.check(Some("x"), Some(&header("alice:secret"))),
            Verdict::Allowed
        );
        assert_eq!(
            a.check(Some("x"), Some("Basic %%%")),
            Verdict::NeedsPassword
        );
        assert_eq!(
            a.check(Some("x"), Some("Bearer abc")),
            Verdict::NeedsPassword
        );
    }
}
