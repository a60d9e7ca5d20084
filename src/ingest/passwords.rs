//! Password files of the embedded listener, in mosquitto_passwd's format, so that users make
//! them with `mosquitto_passwd` (`user:$7$ITERATIONS$SALT$HASH`, PBKDF2-HMAC-SHA512, the
//! default since mosquitto 2.0), its older `user:$6$SALT$HASH` (SHA-512 of password then salt),
//! or plain `user:password` lines (for tests).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha512};

/// Largest password file read (a file of a million users is still far below this).
const MAX_FILE_BYTES: u64 = 64 << 20;
/// PBKDF2 iterations accepted from a file: bounds the work one login attempt can cost.
const MAX_ITERATIONS: u32 = 1_000_000;

/// Why a password file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordFileError {
    /// The file could not be read.
    #[error("cannot read password file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than any real password file.
    #[error("password file {path} is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// A line is not `user:secret`.
    #[error("{path}:{line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No user in the file: nobody could connect.
    #[error("password file {path} names no user")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// How one user's password is stored.
#[derive(Clone, PartialEq, Eq)]
enum Secret {
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2Sha512 {
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// `$6$`: SHA-512(password || salt).
    Sha512 { salt: Vec<u8>, hash: Vec<u8> },
    /// A plain-text password.
    Plain(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets, even hashed ones.
        f.write_str(match self {
            Secret::Pbkdf2Sha512 { .. } => "Pbkdf2Sha512",
            Secret::Sha512 { .. } => "Sha512",
            Secret::Plain(_) => "Plain",
        })
    }
}

/// The users of a password file.
#[derive(Debug, Clone)]
pub struct PasswordFile {
    users: HashMap<String, Secret>,
}

impl PasswordFile {
    /// Reads a password file.
    pub fn read(path: &Path) -> Result<PasswordFile, PasswordFileError> {
        let io = |source| PasswordFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_FILE_BYTES {
            return Err(PasswordFileError::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_FILE_BYTES,
            });
        }
        let text = std::fs::read(path).map_err(io)?;
        PasswordFile::parse(&String::from_utf8_lossy(&text)).map_err(|e| match e {
            ParseError::Line { line, reason } => PasswordFileError::Line {
                path: path.to_path_buf(),
                line,
                reason,
            },
            ParseError::Empty => PasswordFileError::Empty {
                path: path.to_path_buf(),
            },
        })
    }

    /// Parses the text of a password file.
    ///
    /// ```
    /// use provdb::ingest::PasswordFile;
    /// // Made with `mosquitto_passwd -b -c FILE alice secret`.
    /// let f = PasswordFile::parse("# users\nalice:$7$101$LTIJAMk1xImon/n6$bOQkkdxXD2fBLosnSW5F1UaCuhUJfYDZGtF0cTZ6KQgcOzoZTpWfWjEwaDbmzZn6WS/fw4CIfJURPn8bhYhPkA==\nbob:plain\n")?;
    /// assert!(f.verify("alice", b"secret"));
    /// assert!(!f.verify("alice", b"Secret"));
    /// assert!(f.verify("bob", b"plain"));
    /// assert!(!f.verify("carol", b"plain"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse(text: &str) -> Result<PasswordFile, ParseError> {
        let mut users = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let bad = |reason: &str| ParseError::Line {
                line: i + 1,
                reason: reason.to_owned(),
            };
            let (user, secret) = line
                .split_once(':')
                .ok_or_else(|| bad("expected `user:password-hash`"))?;
            if user.is_empty() {
                return Err(bad("empty user name"));
            }
            let secret = parse_secret(secret).map_err(|r| bad(&r))?;
            users.insert(user.to_owned(), secret);
        }
        if users.is_empty() {
            return Err(ParseError::Empty);
        }
        Ok(PasswordFile { users })
    }

    /// True when `password` is `user`'s. Unknown users and wrong passwords are both false.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(Secret::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            }) => {
                let mut out = vec![0u8; hash.len()];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut out);
                constant_time_eq(&out, hash)
            }
            Some(Secret::Sha512 { salt, hash }) => {
                let mut h = Sha512::new();
                h.update(password);
                h.update(salt);
                constant_time_eq(&h.finalize(), hash)
            }
            Some(Secret::Plain(p)) => constant_time_eq(p.as_bytes(), password),
            None => false,
        }
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when there is no user (never for a parsed file).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Why the text of a password file does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A bad line.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No user.
    #[error("no user")]
    Empty,
}

fn parse_secret(secret: &str) -> Result<Secret, String> {
    let b64 = |s: &str, what: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("{what} is not base64: {e}"))
    };
    if let Some(rest) = secret.strip_prefix("$7$") {
        let mut parts = rest.split('$');
        let (Some(iterations), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("a `$7$` hash is `$7$ITERATIONS$SALT$HASH`".to_owned());
        };
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| format!("iteration count `{iterations}` is not a number"))?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(format!(
                "iteration count {iterations} is outside 1..={MAX_ITERATIONS}"
            ));
        }
        let hash = b64(hash, "the hash")?;
        if hash.is_empty() || hash.len() > 64 {
            return Err("the hash must be 1 to 64 bytes".to_owned());
        }
        return Ok(Secret::Pbkdf2Sha512 {
            iterations,
            salt: b64(salt, "the salt")?,
            hash,
        });
    }
    if let Some(rest) = secret.strip_prefix("$6$") {
        let Some((salt, hash)) = rest.split_once('$') else {
            return Err("a `$6$` hash is `$6$SALT$HASH`".to_owned());
        };
        return Ok(Secret::Sha512 {
            salt: b64(salt, "the salt")?,
            hash: b64(hash, "the hash")?,
        });
    }
    if secret.starts_with('$') {
        return Err("unknown hash kind (mosquitto_passwd writes `$7$` or `$6$`)".to_owned());
    }
    Ok(Secret::Plain(secret.to_owned()))
}

/// Compares without an early exit, so timing does not tell how much of a secret matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines made with mosquitto_passwd 2.0 (`-b -c FILE alice secret`, `-H sha512 -b FILE bob pw2`).
    const ALICE: &str = "alice:$7$101$LTIJAMk1xImon/n6$bOQkkdxXD2fBLosnSW5F1UaCuhUJfYDZGtF0cTZ6KQgcOzoZTpWfWjEwaDbmzZn6WS/fw4CIfJURPn8bhYhPkA==";
    const BOB: &str = "bob:$6$+9rvw/S8T8lrC3fH$J6YClBnq+G3oSGhGdOIgej8Eyxi5bSvDORVl+hyo3ivwuAC1O+L3hAeqJPEV9xL+iV3IRc7gt3YSC3zqkmvS7A==";

    #[test]
    fn mosquitto_passwd_hashes_verify() {
        let f = PasswordFile::parse(&format!("{ALICE}\n{BOB}\n")).unwrap();
        assert_eq!(f.len(), 2);
        assert!(f.verify("alice", b"secret"));
        assert!(f.verify("bob", b"pw2"));
        assert!(!f.verify("bob", b"secret"));
        assert!(!f.verify("alice", b""));
        assert!(!f.verify("", b""));
    }

    #[test]
    fn bad_lines_are_errors_with_line_numbers() {
        let err = PasswordFile::parse("# c\n\nalice\n").unwrap_err();
        assert_eq!(
            err,
            ParseError::Line {
                line: 3,
                reason: "expected `user:password-hash`".into()
            }
        );
        assert!(matches!(
            PasswordFile::parse("a:$7$999999999$AA==$AA=="),
            Err(ParseError::Line { line: 1, .. })
        ));
        assert!(matches!(
            PasswordFile::parse("a:$9$x"),
            Err(ParseError::Line { line: 1, .. })
        ));
        assert!(matches!(
            PasswordFile::parse("a:$6$***$AA=="),
            Err(ParseError::Line { line: 1, .. })
        ));
        assert_eq!(
            PasswordFile::parse("# nobody\n").unwrap_err(),
            ParseError::Empty
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errors(text in "\\PC{0,200}") {
            let _ = PasswordFile::parse(&text);
        }

        #[test]
        fn any_dollar_line_parses_or_errors(body in "[$0-9A-Za-z+/=]{0,120}") {
            if let Ok(f) = PasswordFile::parse(&format!("u:{body}")) {
                let _ = f.verify("u", b"x");
            }
        }
    }
}
