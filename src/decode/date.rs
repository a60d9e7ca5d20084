//! CamFlow's `cf:date`: `YYYY:MM:DDThh:mm:ss` in UTC (strftime `%Y:%m:%dT%H:%M:%S`).

/// Parses a CamFlow date (also accepts `-` as the date separator) into Unix seconds.
///
/// ```
/// use provdb::decode::date::parse_camflow_date;
/// assert_eq!(parse_camflow_date("2019:01:24T08:00:24"), Some(1548316824));
/// assert_eq!(parse_camflow_date("1970-01-01T00:00:00"), Some(0));
/// assert_eq!(parse_camflow_date("2019:13:24T08:00:24"), None);
/// // libprovenance v0.1.7-v0.1.8 added milliseconds (dropped here).
/// assert_eq!(parse_camflow_date("2016:10:07T10:49:59.747"), Some(1475837399));
/// ```
pub fn parse_camflow_date(s: &str) -> Option<i64> {
    let s = match s.split_once('.') {
        Some((seconds, fraction))
            if !fraction.is_empty() && fraction.bytes().all(|c| c.is_ascii_digit()) =>
        {
            seconds
        }
        _ => s,
    };
    let b = s.as_bytes();
    if b.len() != 19 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[4], b':' | b'-') || b[7] != b[4] {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let small = |v: i64| u32::try_from(v).ok();
    let date = provdb_storage::UtcDateTime {
        year: y,
        month: small(mo)?,
        day: small(d)?,
        hour: small(h)?,
        minute: small(mi)?,
        second: small(se)?,
    };
    Some(date.to_unix())
}

/// Formats Unix seconds as `YYYY-MM-DDThh:mm:ssZ`.
///
/// ```
/// use provdb::decode::date::format_timestamp;
/// assert_eq!(format_timestamp(1548316824), "2019-01-24T08:00:24Z");
/// ```
pub fn format_timestamp(t: i64) -> String {
    provdb_storage::UtcDateTime::from_unix(t).rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_civil_dates() {
        for t in [0_i64, 951_782_400, 1_488_910_949, 4_102_444_800, -86_400] {
            let s = format_timestamp(t);
            let camflow = s.trim_end_matches('Z').replacen('-', ":", 2);
            assert_eq!(parse_camflow_date(&camflow), Some(t), "{s}");
        }
    }

    #[test]
    fn rejects_malformed_dates() {
        for bad in [
            "",
            "2019:01:24 08:00:24",
            "2019:01-24T08:00:24",
            "20a9:01:24T08:00:24",
            "2019:01:24T24:00:00",
        ] {
            assert_eq!(parse_camflow_date(bad), None, "{bad}");
        }
    }
}
