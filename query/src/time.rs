//! Dates of time literals (`@'2019-01-24T08:00:24'`, CamFlow's `2019:01:24T08:00:24`) and of
//! printed edge times, in UTC.

/// Parses `YYYY-MM-DD[Thh:mm[:ss]][Z]` or CamFlow's `YYYY:MM:DDThh:mm:ss` (UTC) to Unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut d = date.split(['-', ':']);
    let y: i64 = d.next()?.parse().ok()?;
    let mo: u32 = d.next()?.parse().ok()?;
    let da: u32 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return None;
    }
    let mut secs = 0i64;
    if let Some(t) = time {
        let mut parts = t.split(':');
        let h: i64 = parts.next()?.parse().ok()?;
        let mi: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        let se: f64 = parts.next().map_or(Some(0.0), |p| p.parse().ok())?;
        if parts.next().is_some() || !(0..24).contains(&h) || !(0..60).contains(&mi) {
            return None;
        }
        secs = h * 3600 + mi * 60 + se as i64;
    }
    let midnight = provdb_storage::UtcDateTime {
        year: y,
        month: mo,
        day: da,
        hour: 0,
        minute: 0,
        second: 0,
    };
    Some(midnight.to_unix() + secs)
}

/// Formats Unix seconds as `YYYY-MM-DDThh:mm:ssZ`.
pub(crate) fn format_time(t: i64) -> String {
    provdb_storage::UtcDateTime::from_unix(t).rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(parse_time("1970-01-01"), Some(0));
        assert_eq!(parse_time("2019:01:24T08:00:24"), Some(1_548_316_824));
        assert_eq!(parse_time("2019-01-24T08:00:24Z"), Some(1_548_316_824));
        assert_eq!(format_time(1_548_316_824), "2019-01-24T08:00:24Z");
        assert_eq!(parse_time("2019-13-01"), None);
        assert_eq!(parse_time("nonsense"), None);
    }
}
