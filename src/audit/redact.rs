//! Redaction: what klab prints from an audit log must not leak credentials. Secret data (and the
//! copy kubectl keeps in `last-applied-configuration`), tokens in TokenReviews and
//! TokenRequests, `Authorization` headers, bearer tokens and JWTs in any text, and token-looking
//! query parameters in request URIs are replaced by `<redacted>`.
//!
//! Redaction errs on the side of hiding: a false positive costs a little context, a false
//! negative leaks a credential into a terminal, a report or a CI log.

use serde_json::Value;
use std::borrow::Cow;
use std::sync::LazyLock;

pub const REDACTED: &str = "<redacted>";

static JWT: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*").expect("static pattern")
});
static BEARER: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}").expect("static pattern"));
static BOOTSTRAP: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b").expect("static pattern"));

/// Query parameters whose values are credentials.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "authorization",
    "auth",
    "apikey",
    "api_key",
    "key",
    "sig",
    "signature",
    "x-amz-signature",
    "x-goog-signature",
];

/// Keys whose values are credentials wherever they appear in a body.
const SECRET_KEYS: &[&str] = &[
    "authorization",
    "token",
    "bearertoken",
    "password",
    "client-key-data",
    "client-certificate-data",
    "id-token",
    "refresh-token",
    "access-token",
];

/// Hides bearer tokens, basic credentials, JWTs and bootstrap tokens in free text.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.contains("eyJ")
        && !s.to_ascii_lowercase().contains("bearer")
        && !s.to_ascii_lowercase().contains("basic")
        && !s.contains('.')
    {
        return Cow::Borrowed(s);
    }
    let a = JWT.replace_all(s, REDACTED);
    let b = BEARER.replace_all(&a, |c: &regex::Captures<'_>| format!("{} {REDACTED}", &c[1]));
    let c = BOOTSTRAP.replace_all(&b, REDACTED);
    if c == s { Cow::Borrowed(s) } else { Cow::Owned(c.into_owned()) }
}

/// Hides credential query parameters (and any JWT) in a request URI.
pub fn uri(u: &str) -> Cow<'_, str> {
    let Some((path, query)) = u.split_once('?') else { return text(u) };
    let mut changed = false;
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) && !v.is_empty() => {
                changed = true;
                format!("{k}={REDACTED}")
            }
            _ => kv.to_string(),
        })
        .collect();
    if !changed {
        return text(u);
    }
    Cow::Owned(text(&format!("{path}?{}", parts.join("&"))).into_owned())
}

/// Redacts a request or response body in place. `resource` is the event's `objectRef.resource`.
pub fn object(resource: &str, v: &mut Value) {
    walk(v, resource == "secrets");
}

fn walk(v: &mut Value, secret: bool) {
    match v {
        Value::Object(map) => {
            let secret = secret || matches!(map.get("kind").and_then(Value::as_str), Some("Secret" | "SecretList"));
            for (k, val) in map.iter_mut() {
                let key = k.to_ascii_lowercase();
                if secret && (key == "data" || key == "stringdata") {
                    hide_values(val);
                } else if (secret && key == "kubectl.kubernetes.io/last-applied-configuration")
                    || (SECRET_KEYS.contains(&key.as_str()) && !val.is_null() && !val.is_object())
                {
                    *val = Value::String(REDACTED.into());
                } else if key == "headers" || key == "header" {
                    hide_auth_headers(val);
                    walk(val, secret);
                } else {
                    walk(val, secret);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| walk(i, secret)),
        Value::String(s) => {
            if let Cow::Owned(r) = text(s) {
                *s = r;
            }
        }
        _ => {}
    }
}

fn hide_values(v: &mut Value) {
    match v {
        Value::Object(m) => m.values_mut().for_each(|x| *x = Value::String(REDACTED.into())),
        Value::Null => {}
        other => *other = Value::String(REDACTED.into()),
    }
}

fn hide_auth_headers(v: &mut Value) {
    if let Value::Object(m) = v {
        for (k, val) in m.iter_mut() {
            let k = k.to_ascii_lowercase();
            if k == "authorization" || k == "proxy-authorization" || k == "cookie" || k == "x-auth-token" {
                *val = Value::String(REDACTED.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_data_is_hidden_and_the_rest_kept() {
        let mut v = json!({"kind":"Secret","metadata":{"name":"db","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"pw\":\"aHVudGVyMg==\"}}"}},"data":{"pw":"aHVudGVyMg=="},"stringData":{"x":"y"}});
        object("secrets", &mut v);
        let s = v.to_string();
        assert!(!s.contains("aHVudGVyMg") && !s.contains("\"y\"") && s.contains("\"db\""), "{s}");
    }

    #[test]
    fn secret_lists_are_hidden_even_under_another_resource() {
        let mut v = json!({"kind":"SecretList","items":[{"kind":"Secret","data":{"k":"c2VjcmV0"}}]});
        object("", &mut v);
        assert!(!v.to_string().contains("c2VjcmV0"));
    }

    #[test]
    fn tokens_in_reviews_headers_uris_and_text_are_hidden() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
        let mut v =
            json!({"kind":"TokenReview","spec":{"token": jwt},"headers":{"Authorization":"Bearer abcdefghijkl"}});
        object("tokenreviews", &mut v);
        assert!(!v.to_string().contains("eyJzdWIi") && !v.to_string().contains("abcdefghijkl"));
        assert_eq!(uri("/api/v1/pods?watch=1&token=abc123"), "/api/v1/pods?watch=1&token=<redacted>");
        assert_eq!(uri("/api/v1/pods?limit=500"), "/api/v1/pods?limit=500");
        assert!(!text(&format!("failed: Bearer {jwt}")).contains("eyJzdWIi"));
        assert_eq!(text("token abcdef.0123456789abcdef rejected"), "token <redacted> rejected");
        assert!(matches!(text("all fine"), Cow::Borrowed(_)));
    }
}
