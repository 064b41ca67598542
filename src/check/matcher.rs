//! Partial object matching, in the spirit of Chainsaw's assertion trees: every field written in
//! the expected tree must be present in the object with that value; lists match by content
//! (each expected item must match some item of the list); `null` means "absent, null or empty";
//! `false`, `0` and `""` also match an absent field, since the API omits zero values.

use serde_json::Value;

/// `Ok(())` when `actual` matches `expected`, else the path and what differs.
pub fn matches(expected: &Value, actual: Option<&Value>, path: &str) -> Result<(), String> {
    match expected {
        Value::Null => match actual {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Array(a)) if a.is_empty() => Ok(()),
            Some(Value::Object(o)) if o.is_empty() => Ok(()),
            Some(Value::String(s)) if s.is_empty() => Ok(()),
            Some(v) => Err(format!("{path}: expected nothing, found {}", short(v))),
        },
        Value::Object(exp) => {
            let Some(Value::Object(act)) = actual else {
                return Err(format!(
                    "{path}: expected a mapping, found {}",
                    actual.map(short).unwrap_or_else(|| "nothing".into())
                ));
            };
            for (k, v) in exp {
                matches(v, act.get(k), &join(path, k))?;
            }
            Ok(())
        }
        Value::Array(exp) => {
            let items: &[Value] = match actual {
                Some(Value::Array(a)) => a,
                None | Some(Value::Null) => &[],
                Some(v) => return Err(format!("{path}: expected a list, found {}", short(v))),
            };
            for (i, e) in exp.iter().enumerate() {
                if !items.iter().any(|a| matches(e, Some(a), path).is_ok()) {
                    return Err(format!("{path}: no item matches expected item {} ({})", i + 1, short(e)));
                }
            }
            Ok(())
        }
        scalar => match actual {
            Some(a) if scalar_eq(scalar, a) => Ok(()),
            Some(a) => Err(format!("{path}: expected {}, found {}", short(scalar), short(a))),
            // The API omits zero values (`privileged: false` is served as no field at all).
            None if is_zero(scalar) => Ok(()),
            None => Err(format!("{path}: expected {}, found nothing", short(scalar))),
        },
    }
}

/// YAML authors write `replicas: 3` or `"3"`; both mean the same to a reader.
fn scalar_eq(e: &Value, a: &Value) -> bool {
    if e == a {
        return true;
    }
    match (e, a) {
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => s == &n.to_string(),
        (Value::String(s), Value::Bool(b)) | (Value::Bool(b), Value::String(s)) => s == &b.to_string(),
        _ => false,
    }
}

fn is_zero(v: &Value) -> bool {
    matches!(v, Value::Bool(false)) || v.as_f64() == Some(0.0) || v.as_str() == Some("")
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() { k.to_string() } else { format!("{path}.{k}") }
}

pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 { format!("{}…", s.chars().take(80).collect::<String>()) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn partial_trees_match_lists_by_content_and_null_means_absent() {
        let obj =
            json!({"spec": {"podSelector": {}, "policyTypes": ["Egress"], "ports": [{"port": 53}, {"port": 443}]}});
        assert!(matches(&json!({"spec": {"policyTypes": ["Egress"]}}), Some(&obj), "").is_ok());
        assert!(matches(&json!({"spec": {"ports": [{"port": 443}]}}), Some(&obj), "").is_ok());
        assert!(
            matches(&json!({"spec": {"egress": null, "podSelector": {"matchLabels": null}}}), Some(&obj), "").is_ok()
        );
        let e = matches(&json!({"spec": {"policyTypes": ["Ingress"]}}), Some(&obj), "").unwrap_err();
        assert!(e.contains("spec.policyTypes"), "{e}");
        assert!(matches(&json!({"spec": {"ports": [{"port": "443"}]}}), Some(&obj), "").is_ok());
        assert!(matches(&json!({"spec": {"podSelector": null}}), Some(&obj), "").is_ok());
        assert!(matches(&json!({"spec": {"policyTypes": null}}), Some(&obj), "").is_err());
        assert!(matches(&json!({"spec": {"privileged": false}}), Some(&obj), "").is_ok());
        assert!(matches(&json!({"spec": {"privileged": true}}), Some(&obj), "").is_err());
    }
}
