//! A model's byte format: `PDBANOM` magic, a format version (u16, little-endian), then the
//! model (bincode, varint). Decoding validates everything scoring relies on, so a damaged
//! or hostile record is a [`ModelDecodeError`], never a panic or a huge allocation.

use super::model::{Model, MAX_CLUSTERS};
use super::params::MAX_SKETCH_SIZE;
use super::stream::MAX_KNOWN_LABELS;

const MAGIC: &[u8; 7] = b"PDBANOM";
/// The model format this build writes and reads. 2: sketch slots hold dart ids
/// (DartMinHash), no longer ICWS-sampled labels, so a format-1 model's medoids cannot be
/// compared with today's sketches: it is refused (retrain), not misread.
pub const MODEL_FORMAT_VERSION: u16 = 2;
/// Largest encoded model: known labels bound it well below.
const MAX_MODEL_BYTES: usize = 16 << 20;

/// Why bytes are not a usable model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelDecodeError {
    /// The bytes do not start with the model magic.
    #[error("not an anomaly model (bad magic)")]
    BadMagic,
    /// A format this build does not read.
    #[error(
        "anomaly model format {found} is not supported (this build reads {supported}; \
         retrain it with `provdb detect train`)"
    )]
    UnsupportedVersion {
        /// The format of the bytes.
        found: u16,
        /// The format this build reads.
        supported: u16,
    },
    /// The payload does not decode.
    #[error("corrupt anomaly model: {0}")]
    Corrupt(String),
    /// The payload decodes but is not a consistent model.
    #[error("inconsistent anomaly model: {0}")]
    Inconsistent(&'static str),
}

fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_MODEL_BYTES>,
> {
    bincode::config::standard().with_limit::<MAX_MODEL_BYTES>()
}

/// Encodes a model.
pub fn encode(model: &Model) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&MODEL_FORMAT_VERSION.to_le_bytes());
    // Encoding plain data into a Vec cannot fail.
    out.extend(bincode::encode_to_vec(model, config()).unwrap_or_default());
    out
}

/// Decodes and validates a model.
pub fn decode(bytes: &[u8]) -> Result<Model, ModelDecodeError> {
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ModelDecodeError::BadMagic)?;
    let (version, payload) = rest
        .split_first_chunk::<2>()
        .ok_or(ModelDecodeError::Corrupt("no format version".to_owned()))?;
    let found = u16::from_le_bytes(*version);
    if found != MODEL_FORMAT_VERSION {
        return Err(ModelDecodeError::UnsupportedVersion {
            found,
            supported: MODEL_FORMAT_VERSION,
        });
    }
    let (model, used): (Model, usize) = bincode::decode_from_slice(payload, config())
        .map_err(|e| ModelDecodeError::Corrupt(e.to_string()))?;
    if used != payload.len() {
        return Err(ModelDecodeError::Corrupt("trailing bytes".to_owned()));
    }
    validate(&model)?;
    Ok(model)
}

fn validate(m: &Model) -> Result<(), ModelDecodeError> {
    use ModelDecodeError::Inconsistent;
    if let Some(p) = m.params.problem() {
        return Err(Inconsistent(p));
    }
    let clusters = m.medoids.len();
    if clusters == 0 || clusters > MAX_CLUSTERS {
        return Err(Inconsistent("a model has 1 to 64 clusters"));
    }
    if m.thresholds.len() != clusters {
        return Err(Inconsistent("one threshold per cluster"));
    }
    if m.thresholds
        .iter()
        .any(|t| !(t.is_finite() && *t > 0.0 && *t <= 1.0))
    {
        return Err(Inconsistent("thresholds are in (0, 1]"));
    }
    let size = usize::from(m.params.sketch_size);
    if size > usize::from(MAX_SKETCH_SIZE) || m.medoids.iter().any(|s| s.slots.len() != size) {
        return Err(Inconsistent("medoids have the model's sketch size"));
    }
    if m.transitions
        .iter()
        .any(|(a, b)| *a as usize >= clusters || *b as usize >= clusters)
    {
        return Err(Inconsistent("transitions name existing clusters"));
    }
    if !(m.novelty_threshold.is_finite() && m.novelty_threshold > 0.0 && m.novelty_threshold <= 1.0)
    {
        return Err(Inconsistent("the novelty threshold is in (0, 1]"));
    }
    if m.known_labels.len() > MAX_KNOWN_LABELS * 8
        || m.known_labels.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(Inconsistent("known labels are sorted and bounded"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::model::TrainingSummary;
    use crate::anomaly::{Params, Sketch};
    use proptest::prelude::*;

    fn model() -> Model {
        let params = Params {
            sketch_size: 4,
            ..Params::default()
        };
        Model {
            params,
            medoids: vec![Sketch {
                slots: vec![1, 2, 3, 4],
            }],
            thresholds: vec![0.25],
            transitions: vec![(0, 0)],
            known_labels: vec![1, 2, 3, 4],
            novelty_threshold: 0.05,
            training: TrainingSummary {
                runs: 1,
                machines: vec![7],
                ..TrainingSummary::default()
            },
        }
    }

    #[test]
    fn a_model_round_trips() {
        let m = model();
        assert_eq!(decode(&encode(&m)), Ok(m));
    }

    #[test]
    fn damage_is_a_typed_error() {
        let bytes = encode(&model());
        assert_eq!(decode(b"nope"), Err(ModelDecodeError::BadMagic));
        let mut newer = bytes.clone();
        newer[7] = 9;
        assert_eq!(
            decode(&newer),
            Err(ModelDecodeError::UnsupportedVersion {
                found: 9,
                supported: 2
            })
        );
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(ModelDecodeError::Corrupt(_))
        ));
        let mut bad = model();
        bad.transitions.push((0, 3));
        assert!(matches!(
            decode(&encode(&bad)),
            Err(ModelDecodeError::Inconsistent(_))
        ));
        let mut unsorted = model();
        unsorted.known_labels = vec![3, 1];
        assert!(matches!(
            decode(&encode(&unsorted)),
            Err(ModelDecodeError::Inconsistent(_))
        ));
    }

    #[test]
    fn a_format_1_model_is_refused_naming_both_formats() {
        // Format 1 (ICWS sketches) had the same framing; its bytes decode as a model, but
        // its medoids mean something else, so the version alone must refuse it.
        let mut old = encode(&model());
        old[7..9].copy_from_slice(&1u16.to_le_bytes());
        let err = decode(&old).expect_err("format 1 is refused");
        assert_eq!(
            err,
            ModelDecodeError::UnsupportedVersion {
                found: 1,
                supported: 2
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("format 1") && text.contains("reads 2"),
            "{text}"
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
            let mut framed = MAGIC.to_vec();
            framed.extend_from_slice(&MODEL_FORMAT_VERSION.to_le_bytes());
            framed.extend_from_slice(&bytes);
            let _ = decode(&framed);
        }

        #[test]
        fn decoding_a_mutated_model_never_panics(flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..8)) {
            let mut bytes = encode(&model());
            for (at, v) in flips {
                let i = at % bytes.len();
                bytes[i] ^= v;
            }
            if let Ok(m) = decode(&bytes) {
                // Whatever decodes is usable: assessing a sketch does not panic.
                let mut position = None;
                let s = Sketch { slots: vec![0; usize::from(m.params.sketch_size)] };
                let _ = m.assess(&mut position, &s, 0.5);
            }
        }
    }
}
