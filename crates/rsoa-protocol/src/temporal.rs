//! Date-times, dates and times of day with the range and precision PySOA carries.
//!
//! Python's `datetime` covers years 1 to 9999 with microsecond precision, and PySOA's extension types carry exactly
//! that, so these types refuse anything else at construction rather than on the wire.

use std::fmt;
use std::str::FromStr;

use time::macros::datetime;
use time::{Duration, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::magic::{self, Magic};
use crate::ValueError;

const EPOCH: PrimitiveDateTime = datetime!(1970-01-01 0:00);
const MIN_YEAR: i32 = 1;
const MAX_YEAR: i32 = 9999;
/// 0001-01-01T00:00:00 and 9999-12-31T23:59:59.999999 in microseconds from 1970.
const MIN_MICROS: i64 = -62_135_596_800_000_000;
const MAX_MICROS: i64 = 253_402_300_799_999_999;

fn check_year(year: i32) -> Result<(), ValueError> {
    if (MIN_YEAR..=MAX_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(ValueError::invalid(format!(
            "year {year} is out of range 1..=9999"
        )))
    }
}

fn check_micros(us: i64) -> Result<i64, ValueError> {
    if (MIN_MICROS..=MAX_MICROS).contains(&us) {
        Ok(us)
    } else {
        Err(ValueError::invalid(format!(
            "{us} microseconds from 1970 is outside years 1..=9999"
        )))
    }
}

fn primitive_to_micros(dt: PrimitiveDateTime) -> i64 {
    // Years 1..=9999 are about ±2.5e17 µs from 1970, far inside i64.
    (dt - EPOCH).whole_microseconds() as i64
}

fn truncate_to_micros(t: time::Time) -> time::Time {
    let micro = t.microsecond();
    // Nanoseconds below a microsecond are dropped; the arguments come from a valid time so this cannot fail.
    t.replace_microsecond(micro).unwrap_or(t)
}

/// A date-time without a time zone (PySOA extension type 1), years 1 to 9999, microsecond precision.
///
/// It is held as microseconds from 1970, the wire form, so encoding and decoding cost no calendar arithmetic.
///
/// ```
/// use rsoa_protocol::DateTime;
///
/// let dt: DateTime = "2020-02-29T13:14:15.123456".parse().unwrap();
/// assert_eq!(dt.epoch_micros(), 1_582_982_055_123_456);
/// assert_eq!(DateTime::from_epoch_micros(dt.epoch_micros()).unwrap(), dt);
/// assert_eq!(dt.to_string(), "2020-02-29T13:14:15.123456");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateTime(i64);

impl DateTime {
    /// Joins a date and a time of day.
    pub fn new(date: Date, time: Time) -> DateTime {
        // Dates and times are in range by construction, so the sum is too.
        DateTime(primitive_to_micros(PrimitiveDateTime::new(date.0, time.0)))
    }

    /// The date-time this many microseconds after 1970-01-01T00:00:00 (negative: before).
    pub fn from_epoch_micros(us: i64) -> Result<DateTime, ValueError> {
        check_micros(us).map(DateTime)
    }

    /// Microseconds since 1970-01-01T00:00:00, exactly.
    pub fn epoch_micros(self) -> i64 {
        self.0
    }

    /// Converts a `time` date-time, dropping any nanoseconds below a microsecond.
    pub fn from_primitive(dt: PrimitiveDateTime) -> Result<DateTime, ValueError> {
        check_year(dt.year())?;
        Ok(DateTime(primitive_to_micros(
            dt.replace_time(truncate_to_micros(dt.time())),
        )))
    }

    /// The `time` date-time.
    pub fn to_primitive(self) -> PrimitiveDateTime {
        // The range check at construction keeps this inside `time`'s range.
        EPOCH
            .checked_add(Duration::microseconds(self.0))
            .unwrap_or(EPOCH)
    }

    /// The date part.
    pub fn date(self) -> Date {
        Date(self.to_primitive().date())
    }

    /// The time-of-day part.
    pub fn time(self) -> Time {
        Time(self.to_primitive().time())
    }
}

impl fmt::Display for DateTime {
    /// ISO 8601 with a `T` and always six fractional digits, as the golden vectors write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}T{}", self.date(), self.time())
    }
}

impl fmt::Debug for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DateTime({self})")
    }
}

impl FromStr for DateTime {
    type Err = ValueError;

    /// Parses `YYYY-MM-DDTHH:MM:SS[.ffffff]` (a space may stand for the `T`).
    fn from_str(s: &str) -> Result<DateTime, ValueError> {
        let (date, time) = split_date_time(s)?;
        Ok(DateTime::new(date.parse()?, time.parse()?))
    }
}

fn split_date_time(s: &str) -> Result<(&str, &str), ValueError> {
    if s.len() > 10 && matches!(s.as_bytes()[10], b'T' | b' ') && s.is_char_boundary(10) {
        Ok((&s[..10], &s[11..]))
    } else {
        Err(ValueError::invalid(format!(
            "{s:?} is not a date-time like 2020-01-31T12:00:00.000000"
        )))
    }
}

/// A date-time in UTC (PySOA extension type 10), years 1 to 9999, microsecond precision.
///
/// ```
/// use rsoa_protocol::UtcDateTime;
///
/// let dt: UtcDateTime = "2021-12-31T23:59:59.5+00:00".parse().unwrap();
/// assert_eq!(dt.epoch_micros(), 1_640_995_199_500_000);
/// assert_eq!(dt.to_string(), "2021-12-31T23:59:59.500000+00:00");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UtcDateTime(DateTime);

impl UtcDateTime {
    /// The current time, truncated to microseconds.
    pub fn now() -> UtcDateTime {
        // The clock is never outside years 1..=9999.
        UtcDateTime::from_offset(OffsetDateTime::now_utc()).unwrap_or(UtcDateTime(DateTime(0)))
    }

    /// The UTC date-time this many microseconds after the Unix epoch.
    pub fn from_epoch_micros(us: i64) -> Result<UtcDateTime, ValueError> {
        DateTime::from_epoch_micros(us).map(UtcDateTime)
    }

    /// Microseconds since the Unix epoch, exactly.
    pub fn epoch_micros(self) -> i64 {
        self.0.epoch_micros()
    }

    /// Converts a `time` date-time in any offset to UTC, dropping nanoseconds below a microsecond.
    pub fn from_offset(dt: OffsetDateTime) -> Result<UtcDateTime, ValueError> {
        let utc = dt.to_offset(UtcOffset::UTC);
        DateTime::from_primitive(PrimitiveDateTime::new(utc.date(), utc.time())).map(UtcDateTime)
    }

    /// The `time` date-time, in UTC.
    pub fn to_offset(self) -> OffsetDateTime {
        self.0.to_primitive().assume_utc()
    }

    /// The same wall-clock reading without the zone.
    pub fn naive(self) -> DateTime {
        self.0
    }
}

impl fmt::Display for UtcDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+00:00", self.0)
    }
}

impl fmt::Debug for UtcDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UtcDateTime({self})")
    }
}

impl FromStr for UtcDateTime {
    type Err = ValueError;

    /// Parses a date-time ending in `+00:00` or `Z`.
    fn from_str(s: &str) -> Result<UtcDateTime, ValueError> {
        let naive = s
            .strip_suffix("+00:00")
            .or_else(|| s.strip_suffix('Z'))
            .ok_or_else(|| {
                ValueError::invalid(format!(
                    "{s:?} is not a UTC date-time (it must end in +00:00 or Z)"
                ))
            })?;
        naive.parse().map(UtcDateTime)
    }
}

/// A calendar date (PySOA extension type 3), years 1 to 9999.
///
/// ```
/// use rsoa_protocol::Date;
///
/// let date = Date::new(2020, 2, 29).unwrap();
/// assert_eq!(date.to_string(), "2020-02-29");
/// assert!(Date::new(2021, 2, 29).is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date(time::Date);

impl Date {
    /// The date, if it exists.
    pub fn new(year: i32, month: u8, day: u8) -> Result<Date, ValueError> {
        check_year(year)?;
        let month = Month::try_from(month)
            .map_err(|_| ValueError::invalid(format!("month {month} is out of range 1..=12")))?;
        time::Date::from_calendar_date(year, month, day)
            .map(Date)
            .map_err(|_| {
                ValueError::invalid(format!(
                    "day {day} is out of range for {year}-{:02}",
                    month as u8
                ))
            })
    }

    /// Converts a `time` date.
    pub fn from_time_date(date: time::Date) -> Result<Date, ValueError> {
        check_year(date.year())?;
        Ok(Date(date))
    }

    /// The `time` date.
    pub fn to_time_date(self) -> time::Date {
        self.0
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.0.year()
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u8 {
        self.0.month() as u8
    }

    /// The day of the month, from 1.
    pub fn day(self) -> u8 {
        self.0.day()
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.year(),
            self.month(),
            self.day()
        )
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

fn parse_digits(s: &str, what: &str) -> Result<u32, ValueError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::invalid(format!("{what} {s:?} is not a number")));
    }
    s.parse()
        .map_err(|_| ValueError::invalid(format!("{what} {s:?} is out of range")))
}

impl FromStr for Date {
    type Err = ValueError;

    /// Parses `YYYY-MM-DD`.
    fn from_str(s: &str) -> Result<Date, ValueError> {
        let mut parts = s.split('-');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(y), Some(m), Some(d), None) if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
                Date::new(
                    parse_digits(y, "year")? as i32,
                    parse_digits(m, "month")? as u8,
                    parse_digits(d, "day")? as u8,
                )
            }
            _ => Err(ValueError::invalid(format!(
                "{s:?} is not a date like 2020-01-31"
            ))),
        }
    }
}

/// A time of day (PySOA extension type 4) with microsecond precision and no zone (PySOA drops time zones).
///
/// ```
/// use rsoa_protocol::Time;
///
/// let t = Time::new(13, 14, 15, 123_456).unwrap();
/// assert_eq!(t.to_string(), "13:14:15.123456");
/// assert_eq!("13:14:15.123456".parse::<Time>().unwrap(), t);
/// assert!(Time::new(24, 0, 0, 0).is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Time(time::Time);

impl Time {
    /// The time of day, if valid.
    pub fn new(hour: u8, minute: u8, second: u8, microsecond: u32) -> Result<Time, ValueError> {
        time::Time::from_hms_micro(hour, minute, second, microsecond)
            .map(Time)
            .map_err(|e| ValueError::invalid(format!("invalid time of day: {e}")))
    }

    /// Converts a `time` time of day, dropping nanoseconds below a microsecond.
    pub fn from_time(t: time::Time) -> Time {
        Time(truncate_to_micros(t))
    }

    /// The `time` time of day.
    pub fn to_time(self) -> time::Time {
        self.0
    }

    /// The hour, 0 to 23.
    pub fn hour(self) -> u8 {
        self.0.hour()
    }

    /// The minute, 0 to 59.
    pub fn minute(self) -> u8 {
        self.0.minute()
    }

    /// The second, 0 to 59.
    pub fn second(self) -> u8 {
        self.0.second()
    }

    /// The microsecond, 0 to 999 999.
    pub fn microsecond(self) -> u32 {
        self.0.microsecond()
    }

    fn micros_since_midnight(self) -> u64 {
        let (h, m, s) = (
            u64::from(self.hour()),
            u64::from(self.minute()),
            u64::from(self.second()),
        );
        ((h * 60 + m) * 60 + s) * 1_000_000 + u64::from(self.microsecond())
    }

    fn from_micros_since_midnight(us: u64) -> Result<Time, ValueError> {
        if us >= 86_400_000_000 {
            return Err(ValueError::invalid(format!(
                "{us} microseconds is more than a day"
            )));
        }
        let secs = us / 1_000_000;
        Time::new(
            (secs / 3600) as u8,
            (secs / 60 % 60) as u8,
            (secs % 60) as u8,
            (us % 1_000_000) as u32,
        )
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}:{:02}.{:06}",
            self.hour(),
            self.minute(),
            self.second(),
            self.microsecond()
        )
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Time({self})")
    }
}

impl FromStr for Time {
    type Err = ValueError;

    /// Parses `HH:MM:SS` with an optional fraction of up to six digits.
    fn from_str(s: &str) -> Result<Time, ValueError> {
        let bad = || ValueError::invalid(format!("{s:?} is not a time like 12:00:00.000000"));
        let (hms, fraction) = match s.split_once('.') {
            Some((hms, fraction)) if (1..=6).contains(&fraction.len()) => (hms, Some(fraction)),
            Some(_) => return Err(bad()),
            None => (s, None),
        };
        let mut parts = hms.split(':');
        let (h, m, sec) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(m), Some(sec), None)
                if h.len() == 2 && m.len() == 2 && sec.len() == 2 =>
            {
                (h, m, sec)
            }
            _ => return Err(bad()),
        };
        let micro = match fraction {
            Some(f) => parse_digits(f, "fraction")? * 10_u32.pow(6 - f.len() as u32),
            None => 0,
        };
        Time::new(
            parse_digits(h, "hour")? as u8,
            parse_digits(m, "minute")? as u8,
            parse_digits(sec, "second")? as u8,
            micro,
        )
    }
}

impl Magic for DateTime {
    const NAME: &'static str = magic::DATETIME;
    const EXPECTING: &'static str = "a date-time";
    type Repr = i64;

    fn to_repr(&self) -> i64 {
        self.epoch_micros()
    }

    fn from_repr(repr: i64) -> Result<Self, ValueError> {
        DateTime::from_epoch_micros(repr)
    }
}

impl Magic for UtcDateTime {
    const NAME: &'static str = magic::UTC_DATETIME;
    const EXPECTING: &'static str = "a UTC date-time";
    type Repr = i64;

    fn to_repr(&self) -> i64 {
        self.epoch_micros()
    }

    fn from_repr(repr: i64) -> Result<Self, ValueError> {
        UtcDateTime::from_epoch_micros(repr)
    }
}

impl Magic for Date {
    const NAME: &'static str = magic::DATE;
    const EXPECTING: &'static str = "a date";
    type Repr = i64;

    fn to_repr(&self) -> i64 {
        i64::from(self.0.to_julian_day())
    }

    fn from_repr(repr: i64) -> Result<Self, ValueError> {
        let day = i32::try_from(repr)
            .map_err(|_| ValueError::invalid(format!("julian day {repr} is out of range")))?;
        let date = time::Date::from_julian_day(day)
            .map_err(|_| ValueError::invalid(format!("julian day {repr} is out of range")))?;
        Date::from_time_date(date)
    }
}

impl Magic for Time {
    const NAME: &'static str = magic::TIME;
    const EXPECTING: &'static str = "a time of day";
    type Repr = u64;

    fn to_repr(&self) -> u64 {
        self.micros_since_midnight()
    }

    fn from_repr(repr: u64) -> Result<Self, ValueError> {
        Time::from_micros_since_midnight(repr)
    }
}

magic::serde_via_magic!(DateTime, UtcDateTime, Date, Time);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_range_is_enforced() {
        assert!(DateTime::from_epoch_micros(253_402_300_799_999_999).is_ok());
        assert!(
            DateTime::from_epoch_micros(253_402_300_800_000_000).is_err(),
            "year 10000"
        );
        assert!(DateTime::from_epoch_micros(-62_135_596_800_000_000).is_ok());
        assert!(
            DateTime::from_epoch_micros(-62_135_596_800_000_001).is_err(),
            "year 0"
        );
        assert!(DateTime::from_epoch_micros(i64::MIN).is_err());
        assert!(Date::new(0, 1, 1).is_err());
    }

    #[test]
    fn parse_and_display_round_trip() {
        for s in [
            "0001-01-01T00:00:00.000000",
            "1969-12-31T23:59:59.999999",
            "9999-12-31T23:59:59.999999",
        ] {
            assert_eq!(s.parse::<DateTime>().unwrap().to_string(), s);
        }
        assert_eq!(
            "2020-01-02 03:04:05"
                .parse::<DateTime>()
                .unwrap()
                .to_string(),
            "2020-01-02T03:04:05.000000"
        );
        assert!("2020-01-02".parse::<DateTime>().is_err());
        assert!("2020-1-02T00:00:00".parse::<DateTime>().is_err());
        assert!("00:00:00.1234567".parse::<Time>().is_err());
        assert_eq!("00:00:00.5".parse::<Time>().unwrap().microsecond(), 500_000);
    }

    #[test]
    fn time_micros_round_trip() {
        let t = Time::new(23, 59, 59, 999_999).unwrap();
        assert_eq!(
            Time::from_micros_since_midnight(t.micros_since_midnight()).unwrap(),
            t
        );
        assert!(Time::from_micros_since_midnight(86_400_000_000).is_err());
    }
}
