//! Parameters and tera rendering.
//!
//! Templates are rendered per string field after the file is parsed, so a parameter's value is
//! always data inside one field: it can never add YAML structure to the scenario or words to a
//! command line (commands are argument vectors, and klab never hands them to a shell).

use super::model::{ParamSpec, ParamType};
use indexmap::IndexMap;
use serde_json::Value;

/// Parameter values by name, after defaults and `--set` overrides.
pub type Params = IndexMap<String, Value>;

/// Checks a value against the declared type; returns the reason when it does not fit.
pub fn type_error(spec: &ParamSpec, value: &Value) -> Option<String> {
    let ok = match spec.param_type {
        ParamType::String => value.is_string(),
        ParamType::Int => value.is_i64() || value.is_u64(),
        ParamType::Bool => value.is_boolean(),
    };
    (!ok).then(|| format!("expected {}, found {}", type_name(spec.param_type), describe(value)))
}

pub fn type_name(t: ParamType) -> &'static str {
    match t {
        ParamType::String => "a string",
        ParamType::Int => "an integer",
        ParamType::Bool => "true or false",
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// Reads a `--set key=value` text as the declared type.
pub fn parse_override(spec: &ParamSpec, text: &str) -> Result<Value, String> {
    match spec.param_type {
        ParamType::String => Ok(Value::String(text.to_string())),
        ParamType::Int => {
            text.trim().parse::<i64>().map(Value::from).map_err(|_| format!("expected an integer, found {text:?}"))
        }
        ParamType::Bool => match text.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true or false, found {text:?}")),
        },
    }
}

/// Defaults of `specs`, then the overrides (already typed).
pub fn resolve(specs: &IndexMap<String, ParamSpec>, overrides: &Params) -> Params {
    let mut out: Params = specs.iter().map(|(k, s)| (k.clone(), s.default.value.clone())).collect();
    for (k, v) in overrides {
        if specs.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Whether a template in `value` may read the variable `name`: some string that tera would
/// render (it holds `{{`, `{%` or `{#`) has `name` as a whole identifier, or dumps the whole
/// context (`__tera_context`, tera's only way to reach a variable without naming it).
/// Conservative: a mere mention in such a string's plain text counts too.
pub fn may_read_var(value: &Value, name: &str) -> bool {
    match value {
        Value::String(s) => {
            (s.contains("{{") || s.contains("{%") || s.contains("{#"))
                && (s.contains("__tera_context") || has_identifier(s, name))
        }
        Value::Array(items) => items.iter().any(|v| may_read_var(v, name)),
        Value::Object(map) => map.values().any(|v| may_read_var(v, name)),
        _ => false,
    }
}

fn has_identifier(text: &str, name: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(ident) && !text[i + name.len()..].chars().next().is_some_and(ident)
    })
}

/// One template problem: the JSON path of the field and tera's message.
#[derive(Debug, Clone)]
pub struct TemplateError {
    pub path: String,
    pub message: String,
}

/// A renderer bound to one set of parameters.
pub struct Renderer {
    tera: tera::Tera,
    context: tera::Context,
}

impl Renderer {
    pub fn new(params: &Params) -> Self {
        let mut context = tera::Context::new();
        for (k, v) in params {
            context.insert(k.clone(), v);
        }
        Renderer { tera: tera::Tera::default(), context }
    }

    pub fn render_str(&self, text: &str) -> Result<String, String> {
        if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
            return Ok(text.to_string());
        }
        self.tera.render_str(text, &self.context, false).map_err(|e| tera_message(&e))
    }

    /// Renders every string inside `value` in place; collects every failure with its path.
    pub fn render_value(&self, path: &str, value: &mut Value, errors: &mut Vec<TemplateError>) {
        match value {
            Value::String(s) => match self.render_str(s) {
                Ok(r) => *s = r,
                Err(message) => errors.push(TemplateError { path: path.to_string(), message }),
            },
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.render_value(&format!("{path}[{i}]"), item, errors);
                }
            }
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    self.render_value(&p, v, errors);
                }
            }
            _ => {}
        }
    }
}

/// Tera's errors span several lines with its own template names; keep the useful sentence.
fn tera_message(e: &tera::Error) -> String {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-->") && !l.starts_with('|') && !l.starts_with('='))
        .filter(|l| !l.chars().next().is_some_and(|c| c.is_ascii_digit()) || !l.contains('|'))
        .collect();
    let joined = lines.join(" ");
    joined.trim_start_matches("error:").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_strings_and_reports_undefined_variables_with_their_path() {
        let mut p = Params::new();
        p.insert("ns".into(), Value::from("shop"));
        let r = Renderer::new(&p);
        let mut v = serde_json::json!({"a": ["{{ ns }}", "{{ missing }}"], "b": "plain"});
        let mut errors = Vec::new();
        r.render_value("", &mut v, &mut errors);
        assert_eq!(v["a"][0], "shop");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "a[1]");
        assert!(errors[0].message.contains("missing"), "{}", errors[0].message);
    }
}
