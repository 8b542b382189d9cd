//! Compose's variable substitution (compose-go's `template` package):
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+replacement}`,
//! `${VAR+replacement}`, and `$$` for a literal `$`. Defaults and
//! replacements are substituted too, so `${A:-${B}}` works.

/// Where a substitution takes its variables from.
pub trait Lookup {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Lookup for std::collections::BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        std::collections::BTreeMap::get(self, name).map(String::as_str)
    }
}

/// Why a text could not be substituted, worded as compose-go words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `${VAR:?message}` or `${VAR?message}` with VAR missing.
    Required { name: String, message: String },
    /// An unclosed `${` or a name that is not one.
    Invalid(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Required { name, message } if message.is_empty() => {
                write!(f, "required variable {name} is missing a value")
            }
            Failure::Required { name, message } => {
                write!(f, "required variable {name} is missing a value: {message}")
            }
            Failure::Invalid(text) => write!(
                f,
                "invalid interpolation format in {text:?}: you may need to escape any $ with another $"
            ),
        }
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `text` with every variable substituted from `vars`; an unset variable
/// without a default is the empty string, as in compose.
pub fn substitute(text: &str, vars: &dyn Lookup) -> Result<String, Failure> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let mut chars = after.chars();
        match chars.next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('{') => {
                let body_len = closing_brace(&after[1..]).ok_or_else(|| invalid(text))?;
                let body = &after[1..1 + body_len];
                out.push_str(&braced(body, vars, text)?);
                rest = &after[1 + body_len + 1..];
            }
            Some(c) if is_name_start(c) => {
                let len = after.find(|c| !is_name_char(c)).unwrap_or(after.len());
                out.push_str(vars.get(&after[..len]).unwrap_or_default());
                rest = &after[len..];
            }
            // A `$` before anything else stands for itself, as in compose-go.
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn invalid(text: &str) -> Failure {
    Failure::Invalid(text.to_owned())
}

/// The length of a `${...}` body up to its own `}`, nested `${` counted.
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// One `${...}`'s value.
fn braced(body: &str, vars: &dyn Lookup, whole: &str) -> Result<String, Failure> {
    let name_len = body.find(|c| !is_name_char(c)).unwrap_or(body.len());
    let name = &body[..name_len];
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(invalid(whole));
    }
    let operator = &body[name_len..];
    let value = vars.get(name);
    let set_and_not_empty = value.is_some_and(|v| !v.is_empty());
    let (test, argument) = match operator {
        "" => return Ok(value.unwrap_or_default().to_owned()),
        op if op.starts_with(":-") => (set_and_not_empty, &op[2..]),
        op if op.starts_with(":?") => (set_and_not_empty, &op[2..]),
        op if op.starts_with(":+") => (set_and_not_empty, &op[2..]),
        op if op.starts_with(['-', '?', '+']) => (value.is_some(), &op[1..]),
        _ => return Err(invalid(whole)),
    };
    let kind = operator.trim_start_matches(':').as_bytes()[0];
    match (kind, test) {
        (b'-', true) | (b'?', true) => Ok(value.unwrap_or_default().to_owned()),
        (b'-', false) | (b'+', true) => substitute(argument, vars),
        (b'+', false) => Ok(String::new()),
        (_, _) => Err(Failure::Required {
            name: name.to_owned(),
            message: substitute(argument, vars)?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("TAG".to_owned(), "1.2".to_owned()),
            ("EMPTY".to_owned(), String::new()),
            ("IMAGE".to_owned(), "busybox".to_owned()),
        ])
    }

    fn sub(text: &str) -> Result<String, Failure> {
        substitute(text, &vars())
    }

    #[test]
    fn variables_defaults_and_escapes_read_as_compose_reads_them() {
        assert_eq!(sub("app:${TAG}").unwrap(), "app:1.2");
        assert_eq!(sub("app:$TAG-x").unwrap(), "app:1.2-x");
        assert_eq!(sub("${MISSING}|$MISSING").unwrap(), "|");
        assert_eq!(sub("${EMPTY:-dflt}").unwrap(), "dflt");
        assert_eq!(sub("${EMPTY-dflt}").unwrap(), "");
        assert_eq!(sub("${MISSING-dflt}").unwrap(), "dflt");
        assert_eq!(
            sub("${TAG:+set}|${EMPTY:+set}|${EMPTY+set}").unwrap(),
            "set||set"
        );
        assert_eq!(sub("${MISSING:-${IMAGE}:${TAG}}").unwrap(), "busybox:1.2");
        assert_eq!(sub("$$HOME costs $$5 $ 1").unwrap(), "$HOME costs $5 $ 1");
    }

    #[test]
    fn required_variables_fail_with_their_message() {
        let error = sub("${IMG:?set IMG to the image}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "required variable IMG is missing a value: set IMG to the image"
        );
        assert_eq!(
            sub("${EMPTY?}").unwrap(),
            "",
            "? only asks for the variable to be set"
        );
        assert_eq!(
            sub("${EMPTY:?}").unwrap_err().to_string(),
            "required variable EMPTY is missing a value"
        );
    }

    #[test]
    fn malformed_templates_are_refused() {
        assert!(matches!(sub("${TAG"), Err(Failure::Invalid(_))));
        assert!(matches!(sub("${}"), Err(Failure::Invalid(_))));
        assert!(matches!(sub("${1A}"), Err(Failure::Invalid(_))));
        assert!(matches!(sub("${TAG!x}"), Err(Failure::Invalid(_))));
    }
}
