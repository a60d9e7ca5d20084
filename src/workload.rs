//! Workload building: replays of real CamFlow output as many distinct machines. Used by
//! `provdb publish --machines K`, benchmarks and tests.
//!
//! A replica rewrites one log line (W3C document or SPADE record) consistently: every 32-byte
//! identifier whose machine field is the original machine gets replica k's machine id, other
//! identifiers (packets, ids of machine 0) get their last four bytes changed by k, and every
//! occurrence of the original machine id as a number, `"cf:N"` string, or decimal inside a
//! string (legacy machine descriptions) becomes the new machine id. The same input id always
//! maps to the same output id, so references stay intact and replicas never collide.

use base64::Engine as _;

/// Rewrites CamFlow text for replica `k` of a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicator {
    original: u32,
    replacement: u32,
    k: u32,
}

/// Finds the first machine id in a line (`"cf:machine_id":N` or `"cf:machine_id":"cf:N"`, or
/// a legacy machine description keyed by the decimal id).
///
/// ```
/// use provdb::workload::detect_machine;
/// assert_eq!(detect_machine(r#"{"a":{"x":{"cf:machine_id":"cf:42"}}}"#), Some(42));
/// assert_eq!(detect_machine(r#"{"cf:machine_id":635200317}"#), Some(635200317));
/// assert_eq!(detect_machine("no json"), None);
/// ```
pub fn detect_machine(line: &str) -> Option<u32> {
    if let Some(pos) = line.find("\"cf:machine_id\":") {
        let rest = line[pos + 16..].trim_start();
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        let rest = rest.strip_prefix("cf:").unwrap_or(rest);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return digits.parse().ok();
    }
    let pos = line.find("\"[machine] ")?;
    let digits: String = line[pos + 11..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

impl Replicator {
    /// Replica `k` of machine `original`. Replica 0 is the original, unchanged.
    ///
    /// ```
    /// use provdb::workload::Replicator;
    /// let r = Replicator::new(1958431827, 2);
    /// let line = r#"{"prefix":{},"activity":{"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=":{"prov:type":"task","cf:machine_id":"cf:1958431827"}}}"#;
    /// let out = r.rewrite(line);
    /// assert!(!out.contains("1958431827"));
    /// assert!(out.contains(&format!("cf:{}", r.machine())));
    /// assert_eq!(Replicator::new(1958431827, 0).rewrite(line), line);
    /// ```
    pub fn new(original: u32, k: u32) -> Replicator {
        let replacement = if k == 0 {
            original
        } else {
            // An odd multiplier makes this a bijection in k for a fixed original machine.
            original
                .wrapping_mul(2_654_435_761)
                .wrapping_add(k.wrapping_mul(0x9E37_79B9) | 1)
        };
        Replicator {
            original,
            replacement,
            k,
        }
    }

    /// The machine id of this replica.
    pub fn machine(&self) -> u32 {
        self.replacement
    }

    /// Rewrites one line.
    pub fn rewrite(&self, line: &str) -> String {
        if self.k == 0 {
            return line.to_owned();
        }
        let original = self.original.to_string();
        let replacement = self.replacement.to_string();
        let bytes = line.as_bytes();
        let mut out = String::with_capacity(line.len() + 64);
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    // A JSON string: find its end, honouring escapes.
                    let mut j = i + 1;
                    while j < bytes.len() && bytes[j] != b'"' {
                        j += if bytes[j] == b'\\' { 2 } else { 1 };
                    }
                    let end = j.min(bytes.len());
                    out.push('"');
                    out.push_str(&self.rewrite_string(&line[i + 1..end], &original, &replacement));
                    if end < bytes.len() {
                        out.push('"');
                    }
                    i = end + 1;
                }
                b'0'..=b'9' => {
                    let mut j = i;
                    while j < bytes.len() && bytes[j].is_ascii_digit() {
                        j += 1;
                    }
                    let number = &line[i..j];
                    let standalone = i == 0 || !matches!(bytes[i - 1], b'.' | b'-' | b'e' | b'E');
                    if standalone && number == original {
                        out.push_str(&replacement);
                    } else {
                        out.push_str(number);
                    }
                    i = j;
                }
                _ => {
                    let start = i;
                    while i < bytes.len() && !matches!(bytes[i], b'"' | b'0'..=b'9') {
                        i += 1;
                    }
                    out.push_str(&line[start..i]);
                }
            }
        }
        out
    }

    fn rewrite_string(&self, s: &str, original: &str, replacement: &str) -> String {
        let (prefix, bare) = match s.strip_prefix("cf:") {
            Some(b) => ("cf:", b),
            None => ("", s),
        };
        if bare.len() == 44 {
            let engine = &base64::engine::general_purpose::STANDARD;
            let mut id = [0u8; 32];
            if let Ok(32) = engine.decode_slice(bare, &mut id) {
                self.rewrite_identifier(&mut id);
                return format!("{prefix}{}", engine.encode(id));
            }
        }
        if s.contains(original) {
            return replace_decimal(s, original, replacement);
        }
        s.to_owned()
    }

    fn rewrite_identifier(&self, id: &mut [u8; 32]) {
        let machine = u32::from_le_bytes([id[20], id[21], id[22], id[23]]);
        if machine == self.original {
            id[20..24].copy_from_slice(&self.replacement.to_le_bytes());
        } else {
            let tail = u32::from_le_bytes([id[28], id[29], id[30], id[31]]) ^ self.k;
            id[28..32].copy_from_slice(&tail.to_le_bytes());
        }
    }
}

/// Replaces `original` where it stands as a whole decimal number inside `s`.
fn replace_decimal(s: &str, original: &str, replacement: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find(original) {
        let before_ok = !rest[..pos].ends_with(|c: char| c.is_ascii_digit());
        let after = &rest[pos + original.len()..];
        let after_ok = !after.starts_with(|c: char| c.is_ascii_digit());
        out.push_str(&rest[..pos]);
        out.push_str(if before_ok && after_ok {
            replacement
        } else {
            original
        });
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_text;

    const DOC: &str = r#"{"prefix":{},"entity":{"635200317":{"prov:label":"[machine] 635200317","cf:camflow":"v0.2.2"},"AAEAAAAAACCUMgQAAAAAAJ3zExw9Y9wlAAAAAAAAAAA=":{"cf:id":"275092","prov:type":"file","cf:machine_id":635200317,"cf:uid":6352003170},"AAAQAAAAACAnWAAACgACD8CoIQqFggBQBgAAAMdkGOQ=":{"cf:id":22567,"prov:type":"packet"}},"used":{"AAAEAAAAEIAkAAAAAAAAAJ3zExw9Y9wlAAAAAAAAAAA=":{"prov:type":"read","cf:machine_id":635200317,"prov:entity":"AAEAAAAAACCUMgQAAAAAAJ3zExw9Y9wlAAAAAAAAAAA=","prov:activity":"AQAAAAAAAECPOQQAAAAAAJ3zExw9Y9wlAwAAAAAAAAA="}}}"#;

    #[test]
    fn replicas_are_consistent_distinct_and_keep_their_shape() {
        assert_eq!(detect_machine(DOC), Some(635_200_317));
        let original = decode_text(DOC.as_bytes().to_vec()).unwrap();
        let mut seen = std::collections::HashSet::new();
        for k in 1..4 {
            let r = Replicator::new(635_200_317, k);
            let text = r.rewrite(DOC);
            let batch = decode_text(text.clone().into_bytes()).unwrap();
            assert_eq!(batch.vertices.len(), original.vertices.len());
            assert_eq!(batch.edges.len(), original.edges.len());
            // Every vertex that had a machine now has the replica's machine.
            for v in &batch.vertices {
                if v.type_name != "packet" {
                    assert_eq!(v.placement.machine, Some(r.machine()), "{v:?}");
                }
                assert!(seen.insert(v.ext_id.clone()), "replicas collide");
            }
            // The edge still points at the rewritten file vertex.
            let file = batch
                .vertices
                .iter()
                .find(|v| v.type_name == "file")
                .unwrap();
            assert_eq!(batch.edges[0].src.ext_id, file.ext_id);
            // Numbers that merely contain the machine id are left alone.
            assert!(text.contains("6352003170"));
            assert!(text.contains(&format!("[machine] {}", r.machine())));
        }
    }
}
