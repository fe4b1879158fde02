//! Naive ISO 8601 times as the HTTP service's JSON bodies carry them (docs/methods.md#as-of:
//! local wall-clock times), read to µs since 1970-01-01: the column-wise fast path of
//! `winback.serve.json_body`.
//!
//! Only three shapes are read: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS` and
//! `YYYY-MM-DDTHH:MM:SS.ffffff` (the `T` may be a space), years 1–9999, every field in its
//! range (30 February, hour 24 and second 60 are refused). For these, the value is Python's
//! `datetime.fromisoformat`'s; anything else is `None`, and the caller reads it another way.

/// µs in a day.
const DAY_US: i64 = 86_400_000_000;

/// The value of ASCII decimal digits, `None` if any byte is not one.
fn digits(text: &[u8]) -> Option<i64> {
    let mut value = 0_i64;
    for &byte in text {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(byte - b'0');
    }
    Some(value)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a valid date of the proleptic Gregorian calendar: whole 400-year
/// eras of 146,097 days, then the day of the era counted from 1 March (so the leap day ends a
/// year).
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// One time of the three shapes of the module docs as µs since 1970-01-01, `None` otherwise.
pub fn iso_micros(text: &[u8]) -> Option<i64> {
    let width = text.len();
    if !matches!(width, 10 | 19 | 26) || text[4] != b'-' || text[7] != b'-' {
        return None;
    }
    let year = digits(&text[0..4])?;
    let month = digits(&text[5..7])?;
    let day = digits(&text[8..10])?;
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut micros = days_since_epoch(year, month, day) * DAY_US;
    if width > 10 {
        if !matches!(text[10], b'T' | b' ') || text[13] != b':' || text[16] != b':' {
            return None;
        }
        let hour = digits(&text[11..13])?;
        let minute = digits(&text[14..16])?;
        let second = digits(&text[17..19])?;
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        micros += ((hour * 60 + minute) * 60 + second) * 1_000_000;
        if width == 26 {
            if text[19] != b'.' {
                return None;
            }
            micros += digits(&text[20..26])?;
        }
    }
    Some(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_shapes() {
        assert_eq!(iso_micros(b"1970-01-01"), Some(0));
        assert_eq!(iso_micros(b"1970-01-02T00:00:01"), Some(DAY_US + 1_000_000));
        assert_eq!(iso_micros(b"1970-01-01 00:01:00.000002"), Some(60_000_002));
        assert_eq!(iso_micros(b"1969-12-31"), Some(-DAY_US));
        // 2000-02-29 is day 11,016; 0001-01-01 is day −719,162; 9999-12-31 is day 2,932,896.
        assert_eq!(iso_micros(b"2000-02-29"), Some(11_016 * DAY_US));
        assert_eq!(iso_micros(b"0001-01-01"), Some(-719_162 * DAY_US));
        assert_eq!(
            iso_micros(b"9999-12-31T23:59:59.999999"),
            Some(2_932_897 * DAY_US - 1)
        );
    }

    #[test]
    fn refuses_everything_else() {
        for text in [
            "0000-01-01",
            "1900-02-29",
            "1997-02-29",
            "1997-13-01",
            "1997-00-10",
            "1997-04-31",
            "1997-01-00",
            "1997-01-01T24:00:00",
            "1997-01-01T23:60:00",
            "1997-01-01T23:59:60",
            "1997-01-01X00:00:00",
            "1997-01-01t00:00:00",
            "1997/01/01",
            "1997-1-01T00:00:00",
            " 997-01-01",
            "1997-01-01T00:00:00Z",
            "1997-01-01T00:00:00,000000",
            "+997-01-01",
            "1997-01-01T00:00",
            "",
            "19970101",
        ] {
            assert_eq!(iso_micros(text.as_bytes()), None, "{text}");
        }
    }
}
