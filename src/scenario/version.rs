//! Server-version constraints for scenario variants: `<1.25`, `>=1.25`, `>=1.20, <1.25`.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MinorVersion {
    pub major: u32,
    pub minor: u32,
}

impl MinorVersion {
    /// Reads `1.25`, `v1.20.2`, `1.20+` (the apiserver's `minor` can carry a `+`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim().trim_start_matches('v');
        let mut parts = t.split('.');
        let num = |p: Option<&str>| -> Result<u32, String> {
            let p = p.ok_or_else(|| format!("`{text}` is not a version like 1.25"))?;
            let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().map_err(|_| format!("`{text}` is not a version like 1.25"))
        };
        Ok(MinorVersion { major: num(parts.next())?, minor: num(parts.next())? })
    }
}

impl fmt::Display for MinorVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionReq(Vec<(Op, MinorVersion)>);

impl VersionReq {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in text.split(',') {
            let p = part.trim();
            let (op, rest) = if let Some(r) = p.strip_prefix(">=") {
                (Op::Ge, r)
            } else if let Some(r) = p.strip_prefix("<=") {
                (Op::Le, r)
            } else if let Some(r) = p.strip_prefix('>') {
                (Op::Gt, r)
            } else if let Some(r) = p.strip_prefix('<') {
                (Op::Lt, r)
            } else if let Some(r) = p.strip_prefix('=') {
                (Op::Eq, r)
            } else {
                return Err(format!("`{p}` needs a comparison: write e.g. `<1.25`, `>=1.25` or `>=1.20, <1.25`"));
            };
            out.push((op, MinorVersion::parse(rest)?));
        }
        Ok(VersionReq(out))
    }

    pub fn matches(&self, v: MinorVersion) -> bool {
        self.0.iter().all(|(op, b)| match op {
            Op::Lt => v < *b,
            Op::Le => v <= *b,
            Op::Gt => v > *b,
            Op::Ge => v >= *b,
            Op::Eq => v == *b,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psp_and_psa_variants_split_at_1_25() {
        let psp = VersionReq::parse("<1.25").unwrap();
        let psa = VersionReq::parse(">=1.25").unwrap();
        let v120 = MinorVersion::parse("v1.20.2").unwrap();
        let v131 = MinorVersion::parse("1.31+").unwrap();
        assert!(psp.matches(v120) && !psa.matches(v120));
        assert!(psa.matches(v131) && !psp.matches(v131));
        assert!(VersionReq::parse(">=1.20, <1.25").unwrap().matches(v120));
        assert!(VersionReq::parse("1.25").is_err());
    }
}
