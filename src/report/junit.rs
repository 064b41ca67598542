//! JUnit XML: one renderer for check results and selftest phases, so CI systems show them.

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub classname: String,
    pub seconds: f64,
    /// `Some(message, body)` when it failed.
    pub failure: Option<(String, String)>,
    /// `Some(reason)` when it was skipped.
    pub skipped: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub cases: Vec<Case>,
}

pub fn escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

pub fn render(suites: &[Suite]) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for s in suites {
        let failures = s.cases.iter().filter(|c| c.failure.is_some()).count();
        let skipped = s.cases.iter().filter(|c| c.skipped.is_some()).count();
        let time: f64 = s.cases.iter().map(|c| c.seconds).sum();
        o.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.3}\">\n",
            escape(&s.name),
            s.cases.len()
        ));
        for c in &s.cases {
            o.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                escape(&c.name),
                escape(&c.classname),
                c.seconds
            ));
            match (&c.failure, &c.skipped) {
                (Some((m, body)), _) => o.push_str(&format!(
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                    escape(m),
                    escape(body)
                )),
                (None, Some(r)) => {
                    o.push_str(&format!(">\n      <skipped message=\"{}\"/>\n    </testcase>\n", escape(r)))
                }
                (None, None) => o.push_str("/>\n"),
            }
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_and_skips_are_counted_and_escaped() {
        let x = render(&[Suite {
            name: "etcd-quota".into(),
            cases: vec![
                Case {
                    name: "writes".into(),
                    classname: "check".into(),
                    seconds: 0.5,
                    failure: Some(("mvcc: database space exceeded <500>".into(), "evidence & more".into())),
                    skipped: None,
                },
                Case {
                    name: "dns".into(),
                    classname: "check".into(),
                    seconds: 0.0,
                    failure: None,
                    skipped: Some("no CoreDNS".into()),
                },
            ],
        }]);
        assert!(x.contains("tests=\"2\" failures=\"1\" skipped=\"1\""), "{x}");
        assert!(x.contains("&lt;500&gt;") && x.contains("evidence &amp; more"), "{x}");
    }
}
