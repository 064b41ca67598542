//! Editing a flag of a static pod's container command, as text in → text out.
//!
//! The manifest is parsed, the container's `command` list changed, and the manifest written
//! back whole; the original bytes are kept in the journal, so undo restores them exactly.

use serde_json::Value;

/// The container's command entry for `flag` (`--flag=value` or a bare `--flag`), if any.
pub fn flag_entry(manifest: &[u8], container: &str, flag: &str) -> Result<Option<String>, String> {
    let v = parse(manifest)?;
    let cmd = command(&v, container)?;
    Ok(cmd.iter().find(|e| is_flag(e, flag)).cloned())
}

fn is_flag(entry: &str, flag: &str) -> bool {
    entry == flag || entry.starts_with(&format!("{flag}="))
}

fn parse(manifest: &[u8]) -> Result<Value, String> {
    serde_saphyr::from_slice::<Value>(manifest)
        .map_err(|e| format!("the manifest is not valid YAML: {}", e.without_snippet()))
}

fn command(v: &Value, container: &str) -> Result<Vec<String>, String> {
    let containers =
        v.pointer("/spec/containers").and_then(Value::as_array).ok_or("the manifest has no spec.containers")?;
    let c = containers
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .ok_or_else(|| format!("the manifest has no container named `{container}`"))?;
    Ok(c.get("command")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default())
}

/// The process name the container runs (its command's first element, without a path).
pub fn process_name(manifest: &[u8], container: &str) -> Result<String, String> {
    let v = parse(manifest)?;
    let cmd = command(&v, container)?;
    let first = cmd.first().ok_or("the container has no command")?;
    Ok(first.rsplit('/').next().unwrap_or(first).to_string())
}

/// Returns the manifest with `flag` set to `value` (or removed when `value` is `None`).
pub fn set_flag(manifest: &[u8], container: &str, flag: &str, value: Option<&str>) -> Result<Vec<u8>, String> {
    let mut v = parse(manifest)?;
    let containers =
        v.pointer_mut("/spec/containers").and_then(Value::as_array_mut).ok_or("the manifest has no spec.containers")?;
    let c = containers
        .iter_mut()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .ok_or_else(|| format!("the manifest has no container named `{container}`"))?;
    let cmd = c.get_mut("command").and_then(Value::as_array_mut).ok_or("the container has no command list")?;
    cmd.retain(|e| !e.as_str().is_some_and(|s| is_flag(s, flag)));
    if let Some(val) = value {
        cmd.push(Value::from(format!("{flag}={val}")));
    }
    serde_saphyr::to_string(&v).map(String::into_bytes).map_err(|e| format!("cannot write the manifest: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETCD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\nspec:\n  containers:\n  - name: etcd\n    command:\n    - etcd\n    - --data-dir=/var/lib/etcd\n    - --quota-backend-bytes=1\n";

    #[test]
    fn sets_replaces_and_removes_a_flag() {
        let m = set_flag(ETCD.as_bytes(), "etcd", "--quota-backend-bytes", Some("16777216")).unwrap();
        assert_eq!(
            flag_entry(&m, "etcd", "--quota-backend-bytes").unwrap().as_deref(),
            Some("--quota-backend-bytes=16777216")
        );
        assert_eq!(flag_entry(&m, "etcd", "--data-dir").unwrap().as_deref(), Some("--data-dir=/var/lib/etcd"));
        let r = set_flag(&m, "etcd", "--quota-backend-bytes", None).unwrap();
        assert_eq!(flag_entry(&r, "etcd", "--quota-backend-bytes").unwrap(), None);
        assert_eq!(process_name(ETCD.as_bytes(), "etcd").unwrap(), "etcd");
        assert!(set_flag(ETCD.as_bytes(), "nope", "--x", None).unwrap_err().contains("no container named `nope`"));
    }
}
