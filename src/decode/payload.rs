//! The MQTT payload envelope: standard base64 (whitespace tolerated) of a zlib stream, as
//! camflowd's `compress64encode` writes it. Inflating is capped so a bomb is an error.

use base64::Engine as _;
use flate2::{Decompress, FlushDecompress, Status};

use super::DecodeError;

/// Default cap on the inflated size of one payload: 64 MiB (camflowd documents are < 100 KiB).
pub const DEFAULT_MAX_INFLATED: usize = 64 << 20;

/// Decodes base64, ignoring ASCII whitespace (some publishers wrap lines).
pub fn decode_base64(payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let engine = &base64::engine::general_purpose::STANDARD;
    let has_ws = payload.iter().any(u8::is_ascii_whitespace);
    let compact: Vec<u8>;
    let input = if has_ws {
        compact = payload
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        &compact[..]
    } else {
        payload
    };
    engine.decode(input).map_err(|e| {
        let offset = match e {
            base64::DecodeError::InvalidByte(o, _)
            | base64::DecodeError::InvalidLastSymbol(o, _) => o,
            _ => input.len(),
        };
        // Map an offset in the compacted text back to the original payload.
        let offset = if has_ws {
            payload
                .iter()
                .enumerate()
                .filter(|(_, b)| !b.is_ascii_whitespace())
                .nth(offset)
                .map_or(payload.len(), |(i, _)| i)
        } else {
            offset
        };
        DecodeError::Base64 {
            offset,
            detail: e.to_string(),
        }
    })
}

/// First and last non-whitespace positions, or `None` when all is whitespace.
pub(crate) fn trimmed_bounds(bytes: &[u8]) -> Option<(usize, usize)> {
    let first = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let last = bytes.iter().rposition(|b| !b.is_ascii_whitespace())?;
    Some((first, last))
}

/// Inflates a zlib (RFC 1950) stream, failing once the output would exceed `max_output`.
pub fn inflate_zlib(input: &[u8], max_output: usize) -> Result<Vec<u8>, DecodeError> {
    let mut inflater = Decompress::new(true);
    let mut out: Vec<u8> = Vec::with_capacity((input.len() * 8).min(max_output).max(64));
    loop {
        if out.len() == out.capacity() {
            if out.len() >= max_output {
                return Err(DecodeError::TooLarge { limit: max_output });
            }
            let grow = out.capacity().min(max_output - out.len()).max(64);
            out.reserve_exact(grow);
        }
        let consumed = inflater.total_in() as usize;
        let before_out = inflater.total_out();
        let status = inflater
            .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Finish)
            .map_err(|e| DecodeError::Zlib {
                detail: e.to_string(),
            })?;
        match status {
            Status::StreamEnd => return Ok(out),
            Status::Ok | Status::BufError => {
                let progressed =
                    inflater.total_out() != before_out || inflater.total_in() as usize != consumed;
                if out.len() > max_output {
                    return Err(DecodeError::TooLarge { limit: max_output });
                }
                if !progressed && out.len() < out.capacity() {
                    return Err(DecodeError::ZlibTruncated {
                        consumed: inflater.total_in() as usize,
                    });
                }
            }
        }
    }
}

/// base64 -> zlib -> bytes of JSON text.
pub fn unwrap_payload(payload: &[u8], max_inflated: usize) -> Result<Vec<u8>, DecodeError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    let compressed = decode_base64(payload)?;
    inflate_zlib(&compressed, max_inflated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::ZlibEncoder, Compression};
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn round_trip_with_wrapped_base64() {
        let text = b"{\"prefix\":{}}".repeat(50);
        let b64 = base64::engine::general_purpose::STANDARD.encode(zlib(&text));
        let wrapped: String = b64
            .as_bytes()
            .chunks(60)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert_eq!(unwrap_payload(wrapped.as_bytes(), 1 << 20).unwrap(), text);
    }

    #[test]
    fn invalid_base64_reports_offset_in_original_payload() {
        let err = decode_base64(b"QUJD\nR*==").unwrap_err();
        assert_eq!(
            err,
            DecodeError::Base64 {
                offset: 6,
                detail: "Invalid symbol 42, offset 5.".into()
            }
        );
    }

    #[test]
    fn bomb_is_an_error_not_an_allocation() {
        let bomb = zlib(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20_000);
        assert_eq!(
            inflate_zlib(&bomb, 1 << 20),
            Err(DecodeError::TooLarge { limit: 1 << 20 })
        );
        assert_eq!(inflate_zlib(&bomb, 10 << 20).unwrap().len(), 10 << 20);
    }

    #[test]
    fn truncated_and_garbage_streams_are_errors() {
        let z = zlib(&b"hello world ".repeat(100));
        assert!(matches!(
            inflate_zlib(&z[..z.len() / 2], 1 << 20),
            Err(DecodeError::ZlibTruncated { .. })
        ));
        assert!(matches!(
            inflate_zlib(b"not zlib at all", 1 << 20),
            Err(DecodeError::Zlib { .. })
        ));
        assert_eq!(unwrap_payload(b"  \n", 10), Err(DecodeError::Empty));
    }
}
