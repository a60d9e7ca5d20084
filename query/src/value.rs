//! [`Datum`]: a value in a query result.

use std::cmp::Ordering;
use std::fmt;

use provdb_storage::{EdgeId, Value, VertexId};

/// A vertex in a result row.
#[derive(Debug, Clone, PartialEq)]
pub struct VertexRef {
    /// Internal id.
    pub id: VertexId,
    /// External id (without `cf:`).
    pub ext_id: String,
    /// Type name.
    pub type_name: String,
    /// Path name (through `named` edges), when it has one.
    pub name: Option<String>,
}

/// An edge in a result row.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeRef {
    /// Internal id.
    pub id: EdgeId,
    /// External id (without `cf:`).
    pub ext_id: String,
    /// Type name.
    pub type_name: String,
    /// Sender.
    pub src: VertexId,
    /// Receiver.
    pub dst: VertexId,
    /// Unix seconds, when known.
    pub time: Option<i64>,
}

/// A value in a query result.
///
/// ```
/// use provdb_query::Datum;
/// assert_eq!(Datum::Int(3666).to_string(), "3666");
/// assert_eq!(Datum::Time(1_548_316_824).to_string(), "2019-01-24T08:00:24Z");
/// assert!(Datum::Str("3666".into()).loosely_equals(&Datum::Int(3666)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    /// Missing.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A time, Unix seconds (UTC).
    Time(i64),
    /// A vertex.
    Vertex(VertexRef),
    /// An edge.
    Edge(EdgeRef),
}

impl Datum {
    pub(crate) fn from_value(v: &Value) -> Datum {
        match v {
            Value::Null => Datum::Null,
            Value::Bool(b) => Datum::Bool(*b),
            Value::Int(i) => Datum::Int(*i),
            Value::UInt(u) => match i64::try_from(*u) {
                Ok(i) => Datum::Int(i),
                Err(_) => Datum::Str(u.to_string()),
            },
            Value::Float(x) => Datum::Float(*x),
            Value::Str(s) | Value::Json(s) => Datum::Str(s.clone()),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Datum::Int(i) | Datum::Time(i) => Some(*i as f64),
            Datum::Float(x) => Some(*x),
            Datum::Str(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
    }

    /// Compares two values the way `=`, `<` ... do: numbers with numbers (a string holding
    /// a number counts as one, since CamFlow quotes 64-bit integers), times with times or
    /// date strings, strings with strings. `None` when they are not comparable.
    pub fn compare(&self, other: &Datum) -> Option<Ordering> {
        use Datum::*;
        match (self, other) {
            (Null, Null) => Some(Ordering::Equal),
            (Null, _) | (_, Null) => None,
            (Int(a), Int(b)) | (Time(a), Time(b)) | (Int(a), Time(b)) | (Time(a), Int(b)) => {
                Some(a.cmp(b))
            }
            (Str(a), Str(b)) => Some(a.cmp(b)),
            (Time(a), Str(s)) => crate::time::parse_time(s).map(|b| a.cmp(&b)),
            (Str(s), Time(b)) => crate::time::parse_time(s).map(|a| a.cmp(b)),
            (Int(a), Str(s)) if s.trim().parse::<i64>().is_ok() => {
                s.trim().parse::<i64>().ok().map(|b| a.cmp(&b))
            }
            (Str(s), Int(b)) if s.trim().parse::<i64>().is_ok() => {
                s.trim().parse::<i64>().ok().map(|a| a.cmp(b))
            }
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (Bool(a), Str(s)) | (Str(s), Bool(a)) => s.parse::<bool>().ok().map(|b| {
                if *a == b {
                    Ordering::Equal
                } else {
                    Ordering::Less
                }
            }),
            (Vertex(a), Vertex(b)) => Some(a.id.cmp(&b.id)),
            (Edge(a), Edge(b)) => Some(a.id.cmp(&b.id)),
            (a, b) => match (a.number(), b.number()) {
                (Some(x), Some(y)) => x.partial_cmp(&y),
                _ => None,
            },
        }
    }

    /// Equality as `=` sees it (see [`Datum::compare`]).
    pub fn loosely_equals(&self, other: &Datum) -> bool {
        self.compare(other) == Some(Ordering::Equal)
    }

    /// A total order for `order by`: comparable values by [`Datum::compare`], nulls last.
    pub(crate) fn sort_cmp(&self, other: &Datum) -> Ordering {
        match self.compare(other) {
            Some(o) => o,
            None => self
                .rank()
                .cmp(&other.rank())
                .then_with(|| self.to_string().cmp(&other.to_string())),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Datum::Bool(_) => 0,
            Datum::Int(_) | Datum::Float(_) | Datum::Time(_) => 1,
            Datum::Str(_) => 2,
            Datum::Vertex(_) => 3,
            Datum::Edge(_) => 4,
            Datum::Null => 5,
        }
    }

    /// A hashable key for `dedup` and `distinct`.
    pub(crate) fn key(&self) -> DKey {
        match self {
            Datum::Null => DKey::Null,
            Datum::Bool(b) => DKey::Bool(*b),
            Datum::Int(i) | Datum::Time(i) => DKey::Int(*i),
            Datum::Float(x) => DKey::Float(x.to_bits()),
            Datum::Str(s) => DKey::Str(s.clone()),
            Datum::Vertex(v) => DKey::Vertex(v.id.0),
            Datum::Edge(e) => DKey::Edge(e.id.0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum DKey {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(String),
    Vertex(u64),
    Edge(u64),
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datum::Null => f.write_str("null"),
            Datum::Bool(b) => write!(f, "{b}"),
            Datum::Int(i) => write!(f, "{i}"),
            Datum::Float(x) => write!(f, "{x}"),
            Datum::Str(s) => f.write_str(s),
            Datum::Time(t) => f.write_str(&crate::time::format_time(*t)),
            Datum::Vertex(v) => {
                write!(f, "{} {}", v.type_name, v.ext_id)?;
                if let Some(n) = &v.name {
                    write!(f, " ({n})")?;
                }
                Ok(())
            }
            Datum::Edge(e) => write!(f, "-[{}]-> {}", e.type_name, e.ext_id),
        }
    }
}
