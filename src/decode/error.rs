//! Errors of decoding one CamFlow payload or document. Each says what was wrong and where.

use thiserror::Error;

/// Why a payload or document could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The payload is empty (MQTT keep-alives are).
    #[error("empty payload")]
    Empty,
    /// The payload is not standard base64.
    #[error("invalid base64 at byte {offset}: {detail}")]
    Base64 {
        /// Byte offset in the payload (whitespace included).
        offset: usize,
        /// What the base64 decoder said.
        detail: String,
    },
    /// The bytes are not a valid zlib (RFC 1950) stream.
    #[error("invalid zlib stream: {detail}")]
    Zlib {
        /// What the inflater said.
        detail: String,
    },
    /// The zlib stream ends before its end marker.
    #[error("truncated zlib stream: input ended after {consumed} bytes without the end of stream")]
    ZlibTruncated {
        /// Compressed bytes consumed.
        consumed: usize,
    },
    /// Inflating would exceed the configured limit: a decompression bomb, or a limit too low.
    #[error("inflated payload exceeds the limit of {limit} bytes (decompression bomb?)")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The text is not valid JSON.
    #[error("invalid JSON{}at byte {offset}: {detail}", line_label(*.line))]
    Json {
        /// 1-based line inside a multi-line (SPADE) payload, when there is one.
        line: Option<usize>,
        /// Byte offset within the JSON text (of that line).
        offset: usize,
        /// What the parser said.
        detail: String,
    },
    /// JSON nested deeper than the limit (CamFlow documents nest about 4 deep): refused before
    /// parsing, since the parser recurses once per level.
    #[error("JSON nested more than {limit} deep at byte {offset}")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
        /// Byte offset of the bracket that went past it.
        offset: usize,
    },
    /// A line or document longer than the configured limit; it was skipped without being
    /// held in memory.
    #[error("document of {bytes} bytes or more exceeds the limit of {limit} bytes")]
    DocumentTooLong {
        /// The limit in bytes.
        limit: usize,
        /// Bytes seen before giving up (at least `limit + 1`).
        bytes: u64,
    },
    /// The decoder failed internally (a bug, caught so that the rest of the work goes on).
    #[error("internal decoder error: {detail}")]
    Internal {
        /// The panic message.
        detail: String,
    },
    /// Valid JSON that is not a CamFlow document or record.
    #[error("{context}: {detail}")]
    Structure {
        /// Where: e.g. "section `used`, element `AAAE…`" or "SPADE record on line 3".
        context: String,
        /// What is wrong.
        detail: String,
    },
}

fn line_label(line: Option<usize>) -> String {
    match line {
        Some(l) => format!(" on line {l} "),
        None => " ".to_owned(),
    }
}

impl DecodeError {
    pub(crate) fn structure(context: impl Into<String>, detail: impl Into<String>) -> Self {
        DecodeError::Structure {
            context: context.into(),
            detail: detail.into(),
        }
    }

    /// Short machine-readable kind of the error (`base64`, `zlib`, `too_large`, `json`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::Base64 { .. } => "base64",
            DecodeError::Zlib { .. } | DecodeError::ZlibTruncated { .. } => "zlib",
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Json { .. } => "json",
            DecodeError::TooDeep { .. } => "too_deep",
            DecodeError::DocumentTooLong { .. } => "too_long",
            DecodeError::Internal { .. } => "internal",
            DecodeError::Structure { .. } => "structure",
        }
    }
}
