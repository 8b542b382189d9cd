//! Docker's variable expansion in Dockerfile arguments, as BuildKit's
//! shell lexer does it: quotes and the escape character, `$v`, `${v}`,
//! `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?msg}`, `${v?msg}`,
//! `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}` and `${v//p/r}`
//! (patterns with `*` and `?`). Words are split at unquoted whitespace,
//! including whitespace a variable's value brings.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// The variables in scope: ENV and ARG values, later ones winning.
pub type Vars = BTreeMap<String, String>;

/// `text` with its variables expanded and quotes removed: one word.
pub fn word(text: &str, vars: &Vars, escape: char) -> Result<String> {
    Ok(Lexer::new(text, vars, escape).run(None)?.0)
}

/// `text` expanded and split into words.
pub fn words(text: &str, vars: &Vars, escape: char) -> Result<Vec<String>> {
    Ok(Lexer::new(text, vars, escape).run(None)?.1)
}

struct Lexer<'a> {
    chars: Vec<char>,
    at: usize,
    vars: &'a Vars,
    escape: char,
}

/// The words being made: `current` is open while it has had any part.
#[derive(Default)]
struct Words {
    done: Vec<String>,
    current: String,
    open: bool,
}

impl Words {
    fn push_raw(&mut self, text: &str) {
        self.current.push_str(text);
        self.open = true;
    }

    /// An unquoted expansion: its whitespace separates words.
    fn push_split(&mut self, text: &str) {
        for c in text.chars() {
            self.push_char(c);
        }
    }

    fn push_char(&mut self, c: char) {
        if c.is_whitespace() {
            self.end();
        } else {
            self.current.push(c);
            self.open = true;
        }
    }

    fn end(&mut self) {
        if self.open {
            self.done.push(std::mem::take(&mut self.current));
            self.open = false;
        }
    }
}

impl<'a> Lexer<'a> {
    fn new(text: &str, vars: &'a Vars, escape: char) -> Self {
        Self {
            chars: text.chars().collect(),
            at: 0,
            vars,
            escape,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    /// Reads to `stop` (consumed) or the end: the text, and its words.
    /// `raw_escapes` keeps escape characters (for patterns).
    fn run(&mut self, stop: Option<char>) -> Result<(String, Vec<String>)> {
        let mut text = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                words.end();
                return Ok((text, words.done));
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    text.push_str(&value);
                    words.push_split(&value);
                }
                '\'' => {
                    let value = self.single_quoted()?;
                    text.push_str(&value);
                    words.push_raw(&value);
                }
                '"' => {
                    let value = self.double_quoted()?;
                    text.push_str(&value);
                    words.push_raw(&value);
                }
                c if c == self.escape => {
                    self.next();
                    if let Some(escaped) = self.next() {
                        text.push(escaped);
                        words.push_raw(&escaped.to_string());
                    }
                }
                c => {
                    self.next();
                    text.push(c);
                    words.push_char(c);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(bad(format!(
                "unexpected end of statement while looking for matching {stop}"
            )));
        }
        words.end();
        Ok((text, words.done))
    }

    fn single_quoted(&mut self) -> Result<String> {
        self.next();
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(bad(
                        "unexpected end of statement while looking for matching single-quote",
                    ));
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String> {
        self.next();
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(bad(
                        "unexpected end of statement while looking for matching double-quote",
                    ));
                }
                Some('"') => {
                    self.next();
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.next();
                    if c == self.escape
                        && let Some(next) = self.peek()
                        && (next == '"' || next == '$' || next == self.escape)
                    {
                        self.next();
                        out.push(next);
                    } else {
                        out.push(c);
                    }
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        if let Some(c) = self.peek()
            && c.is_ascii_digit()
        {
            while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                self.next();
                name.push(c);
            }
            return name;
        }
        while let Some(c) = self.peek() {
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            self.next();
            name.push(c);
        }
        name
    }

    fn dollar(&mut self) -> Result<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(self.vars.get(&name).cloned().unwrap_or_default());
        }
        self.next();
        match self.peek() {
            None => return Err(bad("syntax error: missing '}'")),
            Some('{' | '}' | ':') => return Err(bad("syntax error: bad substitution")),
            _ => {}
        }
        let name = self.name();
        let value = self.vars.get(&name);
        let set = value.is_some();
        let value = value.cloned().unwrap_or_default();
        let Some(mut op) = self.next() else {
            return Err(bad("syntax error: missing '}'"));
        };
        let mut null_is_unset = false;
        if op == ':' {
            null_is_unset = true;
            op = self
                .next()
                .ok_or_else(|| bad("syntax error: missing '}'"))?;
        }
        let unset = !set || (null_is_unset && value.is_empty());
        match op {
            '}' if !null_is_unset => Ok(value),
            '-' | '+' | '?' => {
                let (word, _) = self.run(Some('}'))?;
                Ok(match op {
                    '-' if unset => word,
                    '-' => value,
                    '+' if unset => String::new(),
                    '+' => word,
                    _ if !set || unset => {
                        let message = match (word.is_empty(), set) {
                            (false, _) => word,
                            (true, false) => "is not allowed to be unset".to_owned(),
                            (true, true) => "is not allowed to be empty".to_owned(),
                        };
                        return Err(bad(format!("{name}: {message}")));
                    }
                    _ => value,
                })
            }
            '#' | '%' if !null_is_unset => {
                let (mut pattern, _) = self.run(Some('}'))?;
                let greedy = pattern.starts_with(op);
                if greedy {
                    pattern.remove(0);
                }
                Ok(trim(&value, &pattern, op == '#', greedy))
            }
            '/' if !null_is_unset => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let (pattern, _) = self.run(Some('/'))?;
                let (replacement, _) = self.run(Some('}'))?;
                Ok(replace(&value, &pattern, &replacement, all))
            }
            other => Err(bad(format!(
                "unsupported modifier ({}{other}) in substitution",
                if null_is_unset { ":" } else { "" }
            ))),
        }
    }
}

fn bad(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

/// Whether `text` matches the shell pattern `pattern` (`*`, `?`) whole.
fn matches(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|skip| matches(rest, &text[skip..])),
        Some(('?', rest)) => !text.is_empty() && matches(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && matches(rest, &text[1..]),
    }
}

/// `${v#p}` / `${v##p}` (from the front) and `${v%p}` / `${v%%p}`.
fn trim(value: &str, pattern: &str, front: bool, greedy: bool) -> String {
    let text: Vec<char> = value.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    let mut lengths: Vec<usize> = (0..=text.len()).collect();
    if greedy {
        lengths.reverse();
    }
    for length in lengths {
        let (matched, kept) = match front {
            true => (&text[..length], &text[length..]),
            false => (&text[text.len() - length..], &text[..text.len() - length]),
        };
        if matches(&pattern, matched) {
            return kept.iter().collect();
        }
    }
    value.to_owned()
}

/// `${v/p/r}` (first match, longest) and `${v//p/r}` (every match).
fn replace(value: &str, pattern: &str, replacement: &str, all: bool) -> String {
    let text: Vec<char> = value.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut start = 0;
    while start < text.len() {
        let found = (start + 1..=text.len())
            .rev()
            .find(|&end| matches(&pattern, &text[start..end]));
        match found {
            Some(end) if !pattern.is_empty() => {
                out.push_str(replacement);
                start = end;
                if !all {
                    out.extend(&text[start..]);
                    return out;
                }
            }
            _ => {
                out.push(text[start]);
                start += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [
            ("v", "value"),
            ("empty", ""),
            ("path", "/a/b/c.tar.gz"),
            ("two", "x y"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn expanded(text: &str) -> String {
        word(text, &vars(), '\\').unwrap()
    }

    #[test]
    fn every_form_of_docker_substitution_expands_as_buildkit_does() {
        let table = [
            ("$v ${v}", "value value"),
            ("${nope:-w} ${empty:-w} ${empty-w} ${v:-w}", "w w  value"),
            ("${nope:+w}|${empty:+w}|${empty+w}|${v+w}", "||w|w"),
            ("${path#*/} ${path##*/}", "a/b/c.tar.gz c.tar.gz"),
            ("${path%.*} ${path%%.*}", "/a/b/c.tar /a/b/c"),
            ("${path/b/B} ${v//l/L} ${v/a*/A}", "/a/B/c.tar.gz vaLue vA"),
            ("'$v' \"$v\" \\$v", "$v value $v"),
            ("a$ b", "a$ b"),
        ];
        for (text, want) in table {
            assert_eq!(expanded(text), want, "{text}");
        }
    }

    #[test]
    fn required_variables_fail_with_their_message() {
        let error = word("${nope:?set it}", &vars(), '\\').unwrap_err();
        assert_eq!(error.to_string(), "nope: set it");
        let error = word("${empty:?}", &vars(), '\\').unwrap_err();
        assert_eq!(error.to_string(), "empty: is not allowed to be empty");
        let error = word("${v", &vars(), '\\').unwrap_err();
        assert!(error.to_string().contains("missing '}'"), "{error}");
    }

    #[test]
    fn words_split_at_unquoted_whitespace_even_inside_a_value() {
        assert_eq!(
            words("a \"b c\" $two '${v}'", &vars(), '\\').unwrap(),
            ["a", "b c", "x", "y", "${v}"]
        );
    }
}
