//! UTC calendar arithmetic for the Unix-second times that edges carry: the one place where
//! days become dates and back, for every parser and printer of dates (CamFlow's `cf:date`,
//! the query language's time literals, printed times). Howard Hinnant's civil-date
//! algorithms (public domain), proleptic Gregorian calendar.

/// A UTC calendar date and time of day, to the second.
///
/// ```
/// use provdb_storage::UtcDateTime;
/// let t = UtcDateTime::from_unix(1_548_316_824);
/// assert_eq!((t.year, t.month, t.day, t.hour, t.minute, t.second), (2019, 1, 24, 8, 0, 24));
/// assert_eq!(t.to_unix(), 1_548_316_824);
/// assert_eq!(UtcDateTime::from_unix(-1).year, 1969);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcDateTime {
    /// Year (proleptic Gregorian; may be before 1970 or negative).
    pub year: i64,
    /// Month, 1-12.
    pub month: u32,
    /// Day of the month, 1-31.
    pub day: u32,
    /// Hour, 0-23.
    pub hour: u32,
    /// Minute, 0-59.
    pub minute: u32,
    /// Second, 0-59 (a leap second's 60 is accepted by [`UtcDateTime::to_unix`]).
    pub second: u32,
}

impl UtcDateTime {
    /// The date and time of Unix seconds `t`.
    pub fn from_unix(t: i64) -> UtcDateTime {
        let days = t.div_euclid(86_400);
        let of_day = t.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // In range by construction: day 1-31, month 1-12, of_day below 86,400.
        let small = |v: i64| u32::try_from(v).unwrap_or(0);
        UtcDateTime {
            year,
            month: small(month),
            day: small(day),
            hour: small(of_day / 3600),
            minute: small(of_day / 60 % 60),
            second: small(of_day % 60),
        }
    }

    /// Unix seconds. Fields out of their ranges are not checked here: parsers check them.
    pub fn to_unix(&self) -> i64 {
        let (month, day) = (i64::from(self.month), i64::from(self.day));
        let y = if month <= 2 { self.year - 1 } else { self.year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// `YYYY-MM-DDThh:mm:ssZ` (RFC 3339).
    ///
    /// ```
    /// assert_eq!(provdb_storage::UtcDateTime::from_unix(0).rfc3339(), "1970-01-01T00:00:00Z");
    /// ```
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::UtcDateTime;

    #[test]
    fn every_day_of_four_centuries_round_trips_and_follows_the_previous() {
        // 1900-03-01 to 2300-03-01: leap years by 4, 100 and 400 all occur.
        let start = UtcDateTime {
            year: 1900,
            month: 3,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        };
        let mut previous = start;
        let first = start.to_unix();
        for n in 1..146_097i64 {
            let t = first + n * 86_400 + 3_723;
            let d = UtcDateTime::from_unix(t);
            assert_eq!(d.to_unix(), t);
            assert_eq!((d.hour, d.minute, d.second), (1, 2, 3));
            let next_day = d.day == previous.day + 1 && d.month == previous.month;
            let next_month = d.day == 1 && (d.month == previous.month % 12 + 1);
            assert!(next_day || next_month, "{previous:?} then {d:?}");
            if next_month {
                let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
                let days_in = match previous.month {
                    2 if leap(previous.year) => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                assert_eq!(previous.day, days_in, "{previous:?}");
            }
            previous = d;
        }
    }
}
