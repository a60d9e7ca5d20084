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
    Some(days_from_civil(y, mo, da) * 86_400 + secs)
}

/// Formats Unix seconds as `YYYY-MM-DDThh:mm:ssZ`.
pub(crate) fn format_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let rem = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

// Howard Hinnant's algorithms.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
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
