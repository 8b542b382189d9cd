//! `.env` and `env_file:` files as compose reads them: `KEY=VALUE` lines,
//! `export ` before a key, `#` comments, single quotes taken literally,
//! double quotes with `\n`, `\t`, `\"` and `\\` escapes, and variables
//! substituted in unquoted and double-quoted values from the lines above
//! and the environment. A line with a key alone takes the environment's
//! value, if any.

use std::collections::BTreeMap;

use crate::interpolate::{self, Lookup};

/// The variables a file sets, in its order of keys (later lines win).
pub fn parse(
    text: &str,
    environment: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, raw) = match line.split_once('=') {
            Some((key, raw)) => (key.trim(), Some(raw.trim())),
            None => (line, None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!(
                "line {}: {line:?} is not KEY=VALUE: a key has no spaces",
                number + 1
            ));
        }
        let Some(raw) = raw else {
            if let Some(value) = environment.get(key) {
                values.insert(key.to_owned(), value.clone());
            }
            continue;
        };
        let scope = Scope {
            file: &values,
            environment,
        };
        let value = value(raw, &scope).map_err(|error| format!("line {}: {error}", number + 1))?;
        values.insert(key.to_owned(), value);
    }
    Ok(values)
}

/// The lines above, then the environment, as dotenv looks variables up.
struct Scope<'a> {
    file: &'a BTreeMap<String, String>,
    environment: &'a BTreeMap<String, String>,
}

impl Lookup for Scope<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.environment
            .get(name)
            .or_else(|| self.file.get(name))
            .map(String::as_str)
    }
}

fn value(raw: &str, scope: &Scope<'_>) -> Result<String, String> {
    if let Some(quoted) = raw.strip_prefix('\'') {
        let end = quoted
            .find('\'')
            .ok_or_else(|| format!("unterminated single quote in {raw:?}"))?;
        return Ok(quoted[..end].to_owned());
    }
    if let Some(quoted) = raw.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.chars();
        loop {
            match chars.next() {
                None => return Err(format!("unterminated double quote in {raw:?}")),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(c @ ('"' | '\\' | '$')) => {
                        // An escaped `$` stays literal through substitution.
                        if c == '$' {
                            out.push('$');
                        }
                        out.push(c);
                    }
                    Some(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                    None => return Err(format!("unterminated double quote in {raw:?}")),
                },
                Some(c) => out.push(c),
            }
        }
        return interpolate::substitute(&out, scope).map_err(|e| e.to_string());
    }
    // An unquoted value ends at a comment that a space starts.
    let unquoted = match raw.find(" #") {
        Some(at) => raw[..at].trim_end(),
        None => raw,
    };
    interpolate::substitute(unquoted, scope).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_read_as_compose_reads_dotenv() {
        let environment = BTreeMap::from([
            ("FROM_SHELL".to_owned(), "shell".to_owned()),
            ("TAG".to_owned(), "from-shell".to_owned()),
        ]);
        let text = "# a comment\n\nexport TAG=1.0\nNAME=app-${TAG} # trailing\nLITERAL='${TAG} stays'\nQUOTED=\"two\\nlines\"\nFROM_SHELL\nNOT_SET\nPRICE=\"\\$5\"\n";
        let values = parse(text, &environment).unwrap();
        assert_eq!(values["TAG"], "1.0");
        // The shell's TAG wins over the file's, as in compose.
        assert_eq!(values["NAME"], "app-from-shell");
        assert_eq!(values["LITERAL"], "${TAG} stays");
        assert_eq!(values["QUOTED"], "two\nlines");
        assert_eq!(values["FROM_SHELL"], "shell");
        assert_eq!(values["PRICE"], "$5");
        assert!(!values.contains_key("NOT_SET"));
    }

    #[test]
    fn bad_lines_are_named() {
        let error = parse("A=1\nB C=2\n", &BTreeMap::new()).unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
        let error = parse("A=\"open\n", &BTreeMap::new()).unwrap_err();
        assert!(error.contains("unterminated double quote"), "{error}");
    }
}
