//! Timestamps as microseconds since the Unix epoch, parsed fast: audit logs carry two RFC 3339
//! timestamps per event and a summary of gigabytes must not spend its time in a general parser.
//!
//! The fast path handles the shape the apiserver writes (`2024-05-01T12:00:00.123456Z`); anything
//! else falls back to `jiff`. Nothing here panics on hostile text: a bad timestamp is `None`.

use jiff::Timestamp;

/// Parses an RFC 3339 timestamp to microseconds since the epoch.
pub fn parse_micros(s: &str) -> Option<i64> {
    fast(s.as_bytes()).or_else(|| s.parse::<Timestamp>().ok().map(|t| t.as_microsecond()))
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut v: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn fast(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, s) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let frac = &rest[1..1 + n];
        let mut scale = 100_000i64;
        for &c in frac.iter().take(6) {
            micros += i64::from(c - b'0') * scale;
            scale /= 10;
        }
        rest = &rest[1 + n..];
    }
    if rest != b"Z" {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi) * 60_000_000 + s * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats microseconds as RFC 3339 with millisecond precision, in UTC.
pub fn format_micros(us: i64) -> String {
    match Timestamp::from_microsecond(us) {
        Ok(t) => format!("{:.3}", t),
        Err(_) => us.to_string(),
    }
}

/// Parses a `--since/--until` value: an RFC 3339 timestamp, or a date (`2024-05-01`, midnight UTC).
pub fn parse_bound(s: &str) -> Option<i64> {
    if let Some(v) = parse_micros(s) {
        return Some(v);
    }
    let d: jiff::civil::Date = s.parse().ok()?;
    d.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_microsecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_agrees_with_jiff() {
        for s in
            ["2024-05-01T12:00:00.123456Z", "2019-11-19T13:49:30Z", "2000-02-29T23:59:59.5Z", "1970-01-01T00:00:00Z"]
        {
            let j: Timestamp = s.parse().expect("valid");
            assert_eq!(fast(s.as_bytes()), Some(j.as_microsecond()), "{s}");
        }
    }

    #[test]
    fn offsets_fall_back_and_garbage_is_none() {
        assert_eq!(parse_micros("2024-05-01T14:00:00+02:00"), parse_micros("2024-05-01T12:00:00Z"));
        assert_eq!(parse_micros("yesterday"), None);
        assert_eq!(parse_micros("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_bound("2024-05-01"), parse_micros("2024-05-01T00:00:00Z"));
    }
}
