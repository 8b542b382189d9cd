//! The Dockerfile parser, by BuildKit's rules: parser directives at the
//! top (`# escape=`, `# syntax=`), comments, line continuations with the
//! escape character, `--flag=value` options, exec (JSON) and shell forms,
//! and heredocs (`RUN <<EOF`, `COPY <<EOF /file`).

use crate::error::{Error, Result};

/// One instruction, as written (variables are expanded when it runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Its first line in the Dockerfile, from 1.
    pub line: usize,
    /// Upper case: `RUN`, `COPY`, …
    pub keyword: String,
    /// `--name=value` options, in order (`--name` alone has an empty value
    /// and `bare` set).
    pub flags: Vec<Flag>,
    pub args: Args,
    /// Heredocs named in the arguments, in order.
    pub heredocs: Vec<Heredoc>,
    /// The instruction as Docker prints it in `Step N/M : …`.
    pub original: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: String,
    pub bare: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// The JSON array form: `["a", "b"]`.
    Exec(Vec<String>),
    /// Everything after the keyword and flags, as one string.
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    /// `<<"EOF"` or `<<'EOF'`: no expansion of its content.
    pub quoted: bool,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dockerfile {
    pub escape: char,
    /// The `# syntax=` directive, if any.
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// Instructions whose arguments may be a JSON array.
const EXEC_FORM: [&str; 7] = ["RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"];
/// Instructions that take `--flag` options.
const WITH_FLAGS: [&str; 5] = ["FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"];
/// Instructions whose arguments may open heredocs.
const WITH_HEREDOCS: [&str; 3] = ["RUN", "COPY", "ADD"];
pub const KEYWORDS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parses `text`, the contents of a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile> {
    let lines: Vec<&str> = text.lines().collect();
    let mut dockerfile = Dockerfile {
        escape: '\\',
        ..Dockerfile::default()
    };
    let mut index = 0;
    // Parser directives: only at the very top, before any other line.
    while let Some(line) = lines.get(index) {
        let Some((name, value)) = directive(line) else {
            break;
        };
        match name.as_str() {
            "escape" => {
                dockerfile.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(Error::Dockerfile {
                            line: index + 1,
                            message: format!(
                                "invalid escape token '{other}' does not match ` or \\"
                            ),
                        });
                    }
                }
            }
            "syntax" => dockerfile.syntax = Some(value),
            _ => {}
        }
        index += 1;
    }
    let escape = dockerfile.escape;
    while index < lines.len() {
        let trimmed = lines[index].trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            index += 1;
            continue;
        }
        let first = index;
        let mut logical = String::new();
        // Joins continued lines; comment and empty lines inside are dropped.
        loop {
            // Only the first line loses its indentation, as BuildKit's.
            let line = match index == first {
                true => lines[index].trim_start(),
                false => lines[index],
            };
            index += 1;
            if index - 1 != first && (line.trim_start().starts_with('#') || line.trim().is_empty())
            {
                if index >= lines.len() {
                    break;
                }
                continue;
            }
            let end = line.trim_end();
            match end.strip_suffix(escape) {
                Some(head) if index < lines.len() => logical.push_str(head),
                Some(head) => {
                    logical.push_str(head);
                    break;
                }
                None => {
                    logical.push_str(line);
                    break;
                }
            }
        }
        let mut instruction = instruction(&logical, first + 1, escape)?;
        if WITH_HEREDOCS.contains(&instruction.keyword.as_str()) {
            for (name, strip_tabs, quoted) in heredoc_names(&logical) {
                let mut content = String::new();
                loop {
                    let Some(line) = lines.get(index) else {
                        return Err(Error::Dockerfile {
                            line: first + 1,
                            message: format!("unterminated heredoc {name}"),
                        });
                    };
                    index += 1;
                    let line = if strip_tabs {
                        line.trim_start_matches('\t')
                    } else {
                        line
                    };
                    if line == name {
                        break;
                    }
                    content.push_str(line);
                    content.push('\n');
                }
                instruction.heredocs.push(Heredoc {
                    name,
                    content,
                    quoted,
                });
            }
        }
        dockerfile.instructions.push(instruction);
    }
    Ok(dockerfile)
}

/// `# name=value` at the top of the file.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim().strip_prefix('#')?;
    let (name, value) = rest.split_once('=')?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.trim().to_owned()))
}

fn instruction(logical: &str, line: usize, escape: char) -> Result<Instruction> {
    let logical = logical.trim();
    let (word, rest) = logical
        .split_once(char::is_whitespace)
        .unwrap_or((logical, ""));
    let keyword = word.to_ascii_uppercase();
    if !KEYWORDS.contains(&keyword.as_str()) {
        return Err(Error::Dockerfile {
            line,
            message: format!("unknown instruction: {word}"),
        });
    }
    let mut rest = rest.trim_start();
    let mut flags = Vec::new();
    if WITH_FLAGS.contains(&keyword.as_str()) {
        while let Some(option) = rest.strip_prefix("--") {
            let end = flag_end(option, escape);
            let (text, after) = option.split_at(end);
            if text.is_empty() {
                break;
            }
            let (name, value, bare) = match text.split_once('=') {
                Some((name, value)) => (name, unquote(value), false),
                None => (text, String::new(), true),
            };
            flags.push(Flag {
                name: name.to_owned(),
                value,
                bare,
            });
            rest = after.trim_start();
        }
    }
    let args = match EXEC_FORM.contains(&keyword.as_str()) && rest.starts_with('[') {
        true => match serde_json::from_str::<Vec<String>>(rest) {
            Ok(list) => Args::Exec(list),
            Err(_) => Args::Shell(rest.to_owned()),
        },
        false => Args::Shell(rest.to_owned()),
    };
    Ok(Instruction {
        line,
        original: format!("{keyword} {}", logical[word.len()..].trim_start())
            .trim_end()
            .to_owned(),
        keyword,
        flags,
        args,
        heredocs: Vec::new(),
    })
}

/// Where a `--flag=value` token ends: at whitespace outside quotes.
fn flag_end(text: &str, escape: char) -> usize {
    let mut quote = None;
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match (quote, c) {
            (_, c) if c == escape => {
                chars.next();
            }
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => return at,
            _ => {}
        }
    }
    text.len()
}

fn unquote(value: &str) -> String {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner.to_owned();
        }
    }
    value.to_owned()
}

/// The heredocs a line opens: `<<NAME`, `<<-NAME` (leading tabs
/// stripped), `<<"NAME"` (quoted: not expanded).
fn heredoc_names(line: &str) -> Vec<(String, bool, bool)> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("<<") {
        let mut after = &rest[at + 2..];
        let strip_tabs = after.starts_with('-');
        if strip_tabs {
            after = &after[1..];
        }
        let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'');
        if let Some(q) = quote {
            after = &after[1..];
            if let Some(end) = after.find(q) {
                found.push((after[..end].to_owned(), strip_tabs, true));
                rest = &after[end + 1..];
                continue;
            }
        }
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            rest = after;
            continue;
        }
        rest = &after[name.len()..];
        found.push((name, strip_tabs, false));
    }
    found
}

impl Instruction {
    /// The value of option `--name`, if given.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|flag| flag.name == name)
            .map(|flag| flag.value.as_str())
    }

    /// Refuses options other than `allowed`, naming the line.
    pub fn only_flags(&self, allowed: &[&str]) -> Result<()> {
        match self
            .flags
            .iter()
            .find(|flag| !allowed.contains(&flag.name.as_str()))
        {
            None => Ok(()),
            Some(flag) => Err(Error::Dockerfile {
                line: self.line,
                message: format!(
                    "unknown flag: --{} for {}{}",
                    flag.name,
                    self.keyword,
                    match allowed {
                        [] => " (it takes none)".to_owned(),
                        _ => format!(
                            " (it takes {})",
                            allowed
                                .iter()
                                .map(|f| format!("--{f}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                ),
            }),
        }
    }

    /// `text` of this instruction expanded as one word; an error names
    /// the line.
    pub fn word(&self, text: &str, vars: &crate::expand::Vars, escape: char) -> Result<String> {
        crate::expand::word(text, vars, escape).map_err(|e| self.error(e.to_string()))
    }

    /// `text` of this instruction expanded and split into words.
    pub fn words(
        &self,
        text: &str,
        vars: &crate::expand::Vars,
        escape: char,
    ) -> Result<Vec<String>> {
        crate::expand::words(text, vars, escape).map_err(|e| self.error(e.to_string()))
    }

    /// An error about this instruction, naming its line.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::Step {
            line: self.line,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_comments_flags_and_both_forms_parse_as_buildkit_does() {
        let file = parse(
            "# syntax=docker/dockerfile:1\n\
             FROM --platform=linux/amd64 busybox AS base\n\
             # a comment\n\
             RUN echo one \\\n  # inside\n\n  two\n\
             CMD [\"sh\", \"-c\", \"echo hi\"]\n\
             COPY --chown=1:2 --chmod=0755 a b /dst/\n",
        )
        .unwrap();
        assert_eq!(file.syntax.as_deref(), Some("docker/dockerfile:1"));
        let [from, run, cmd, copy] = file.instructions.as_slice() else {
            panic!("{:?}", file.instructions);
        };
        assert_eq!(from.flag("platform"), Some("linux/amd64"));
        assert_eq!(from.args, Args::Shell("busybox AS base".into()));
        assert_eq!(
            (run.line, &run.args),
            (4, &Args::Shell("echo one   two".into()))
        );
        assert_eq!(
            cmd.args,
            Args::Exec(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(copy.flag("chown"), Some("1:2"));
        assert_eq!(copy.args, Args::Shell("a b /dst/".into()));
        assert_eq!(copy.original, "COPY --chown=1:2 --chmod=0755 a b /dst/");
    }

    #[test]
    fn the_escape_directive_changes_the_continuation_character() {
        let file = parse("# escape=`\nRUN dir c:\\ `\n  /w\n").unwrap();
        assert_eq!(
            file.instructions[0].args,
            Args::Shell("dir c:\\   /w".into())
        );
        let error = parse("# escape=x\nRUN a").unwrap_err().to_string();
        assert!(error.contains("invalid escape token 'x'"), "{error}");
    }

    #[test]
    fn heredocs_take_the_lines_up_to_their_name() {
        let file = parse(
            "RUN <<EOF\necho a\necho b\nEOF\nCOPY <<-'END' /greeting\n\thello $x\n\tEND\nCMD x\n",
        )
        .unwrap();
        let [run, copy, cmd] = file.instructions.as_slice() else {
            panic!("{:?}", file.instructions);
        };
        assert_eq!(run.heredocs[0].content, "echo a\necho b\n");
        assert!(!run.heredocs[0].quoted);
        assert_eq!(copy.heredocs[0].content, "hello $x\n");
        assert!(copy.heredocs[0].quoted);
        assert_eq!(cmd.line, 8);
    }

    #[test]
    fn an_unknown_instruction_is_an_error_naming_its_line() {
        let error = parse("FROM a\n\nFROBNICATE x\n").unwrap_err().to_string();
        assert_eq!(
            error,
            "dockerfile parse error on line 3: unknown instruction: FROBNICATE"
        );
    }
}
