//! Human durations in scenario files (`90s`, `2m`, `1h30m`).
//!
//! A duration is written as a string so that authors read it the way they would say it; it must
//! parse exactly or the file is rejected, never guessed.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A whole number of milliseconds, written as `500ms`, `45s`, `2m`, `1h30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub u64);

impl Duration {
    pub const fn from_secs(s: u64) -> Self {
        Duration(s * 1000)
    }
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Parses `1h30m`, `90s`, `250ms`. Units are required; the whole string must be used.
    pub fn parse(text: &str) -> Result<Self, String> {
        let s = text.trim();
        if s.is_empty() {
            return Err("empty duration: write e.g. `30s`, `2m` or `1h30m`".into());
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut total: u64 = 0;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(format!("invalid duration `{text}`: expected a number at `{}`", &s[start..]));
            }
            let n: u64 = s[start..i].parse().map_err(|_| format!("invalid duration `{text}`: number too large"))?;
            let ustart = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let factor = match &s[ustart..i] {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "" => return Err(format!("invalid duration `{text}`: missing unit after {n} (ms, s, m or h)")),
                u => return Err(format!("invalid duration `{text}`: unknown unit `{u}` (ms, s, m or h)")),
            };
            total = n
                .checked_mul(factor)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("invalid duration `{text}`: too large"))?;
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let mut s = ms / 1000;
        let h = s / 3600;
        s %= 3600;
        let m = s / 60;
        s %= 60;
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Duration::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compound_units_and_prints_them_back() {
        assert_eq!(Duration::parse("1h30m").unwrap(), Duration(5_400_000));
        assert_eq!(Duration::parse("250ms").unwrap(), Duration(250));
        assert_eq!(Duration::parse("1h30m").unwrap().to_string(), "1h30m");
        assert_eq!(Duration::parse("90s").unwrap().to_string(), "1m30s");
    }

    #[test]
    fn rejects_what_it_cannot_read_exactly() {
        assert!(Duration::parse("30").unwrap_err().contains("missing unit"));
        assert!(Duration::parse("3d").unwrap_err().contains("unknown unit `d`"));
        assert!(Duration::parse("m").is_err());
        assert!(Duration::parse("99999999999999999999h").is_err());
    }
}
