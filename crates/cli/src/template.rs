//! Go's text/template, as far as `--format` uses it, over JSON values:
//! field chains (`.State.Status`, `$v.Name`), pipelines, parentheses,
//! `if`/`else if`/`else`, `range` (with `$i, $v :=`), `with`, variables,
//! comments, `{{-`/`-}}` trimming, Go's builtins (`index`, `len`,
//! `printf`, `print`, `println`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`,
//! `and`, `or`, `not`) and the docker CLI's own (`json`, `join`, `split`,
//! `lower`, `upper`, `title`, `pad`, `truncate`). Values print as Go
//! prints them: `[a b]` for a list, `map[k:v]` for an object.

use std::fmt::Write as _;

use anyhow::{Result, anyhow, bail};
use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct GoTemplate {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    /// `{{pipeline}}`, printed; or `{{$x := pipeline}}`, not.
    Action {
        declare: Vec<String>,
        pipeline: Pipeline,
    },
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    Range {
        declare: Vec<String>,
        pipeline: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipeline: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// Commands joined by `|`: each one's result is the next one's last
/// argument.
type Pipeline = Vec<Command>;

#[derive(Debug, Clone)]
struct Command {
    words: Vec<Word>,
}

#[derive(Debug, Clone)]
enum Word {
    /// `.`, `.A.B`, `$`, `$x.A`, or `(pipeline).A`.
    Path(Root, Vec<String>),
    Function(String),
    Literal(Value),
}

#[derive(Debug, Clone)]
enum Root {
    Dot,
    Variable(String),
    Group(Box<Pipeline>),
}

/// What the evaluation of a table's header row changes: each field is
/// its column's name, and the docker CLI's functions give back their
/// argument.
pub type Headers<'a> = &'a dyn Fn(&str) -> String;

impl GoTemplate {
    pub fn parse(text: &str) -> Result<Self> {
        let tokens = split_actions(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let (nodes, end) = parser.nodes()?;
        if let Some(end) = end {
            bail!("template: unexpected {{{{{end}}}}}");
        }
        Ok(Self { nodes })
    }

    /// The template applied to `data`; for a table's header row, with
    /// `headers` naming each field.
    pub fn execute(&self, data: &Value, headers: Option<Headers<'_>>) -> Result<String> {
        let mut out = String::new();
        let mut scope = Scope {
            variables: vec![("$".to_owned(), data.clone())],
            headers,
        };
        scope.nodes(&self.nodes, data, &mut out)?;
        Ok(out)
    }
}

/// The template's text and its actions' insides, trimmed as `{{-` and
/// `-}}` ask.
enum Piece {
    Text(String),
    Action(String),
}

fn split_actions(text: &str) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let mut before = &rest[..start];
        let inside_start = start + 2;
        let trim_left =
            rest[inside_start..].starts_with("- ") || rest[inside_start..].starts_with("-\t");
        if trim_left {
            before = before.trim_end();
        }
        if !before.is_empty() {
            pieces.push(Piece::Text(before.to_owned()));
        }
        let close = find_close(&rest[inside_start..])
            .ok_or_else(|| anyhow!("template: unclosed action in {text:?}"))?;
        let mut inside = &rest[inside_start..inside_start + close];
        if trim_left {
            inside = &inside[1..];
        }
        let trim_right = inside.ends_with(" -") || inside.ends_with("\t-");
        if trim_right {
            inside = &inside[..inside.len() - 1];
        }
        let inside = inside.trim();
        if !(inside.starts_with("/*") && inside.ends_with("*/")) {
            pieces.push(Piece::Action(inside.to_owned()));
        }
        rest = &rest[inside_start + close + 2..];
        if trim_right {
            rest = rest.trim_start();
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

/// Where `}}` closes an action, past any quoted string in it.
fn find_close(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if bytes[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

struct Parser {
    tokens: Vec<Piece>,
    at: usize,
}

impl Parser {
    /// Nodes up to an `else…` or `end`, which it returns.
    fn nodes(&mut self) -> Result<(Vec<Node>, Option<String>)> {
        let mut nodes = Vec::new();
        while self.at < self.tokens.len() {
            let piece = std::mem::replace(&mut self.tokens[self.at], Piece::Text(String::new()));
            self.at += 1;
            let action = match piece {
                Piece::Text(text) => {
                    nodes.push(Node::Text(text));
                    continue;
                }
                Piece::Action(action) => action,
            };
            let (keyword, rest) = match action.split_once(char::is_whitespace) {
                Some((keyword, rest)) => (keyword, rest.trim()),
                None => (action.as_str(), ""),
            };
            match keyword {
                "end" | "else" => return Ok((nodes, Some(action.clone()))),
                "if" => nodes.push(self.if_node(rest)?),
                "range" => {
                    let (declare, pipeline) = declaration(rest)?;
                    let (body, otherwise) = self.body_and_else("range")?;
                    nodes.push(Node::Range {
                        declare,
                        pipeline,
                        body,
                        otherwise,
                    });
                }
                "with" => {
                    let pipeline = pipeline(rest)?;
                    let (body, otherwise) = self.body_and_else("with")?;
                    nodes.push(Node::With {
                        pipeline,
                        body,
                        otherwise,
                    });
                }
                "define" | "template" | "block" | "break" | "continue" => {
                    bail!("template: {{{{{keyword}}}}} is not supported in --format")
                }
                _ => {
                    let (declare, pipeline) = declaration(&action)?;
                    nodes.push(Node::Action { declare, pipeline });
                }
            }
        }
        Ok((nodes, None))
    }

    fn if_node(&mut self, condition: &str) -> Result<Node> {
        let mut branches = vec![(pipeline(condition)?, Vec::new())];
        loop {
            let (body, end) = self.nodes()?;
            branches.last_mut().expect("a branch").1 = body;
            match end.as_deref() {
                Some("end") => {
                    return Ok(Node::If {
                        branches,
                        otherwise: Vec::new(),
                    });
                }
                Some("else") => {
                    let (otherwise, end) = self.nodes()?;
                    expect_end(end, "if")?;
                    return Ok(Node::If {
                        branches,
                        otherwise,
                    });
                }
                Some(other) if other.starts_with("else if ") => {
                    branches.push((pipeline(&other["else if ".len()..])?, Vec::new()));
                }
                _ => bail!("template: {{{{if}}}} without {{{{end}}}}"),
            }
        }
    }

    fn body_and_else(&mut self, what: &str) -> Result<(Vec<Node>, Vec<Node>)> {
        let (body, end) = self.nodes()?;
        match end.as_deref() {
            Some("end") => Ok((body, Vec::new())),
            Some("else") => {
                let (otherwise, end) = self.nodes()?;
                expect_end(end, what)?;
                Ok((body, otherwise))
            }
            _ => bail!("template: {{{{{what}}}}} without {{{{end}}}}"),
        }
    }
}

fn expect_end(end: Option<String>, what: &str) -> Result<()> {
    match end.as_deref() {
        Some("end") => Ok(()),
        _ => bail!("template: {{{{{what}}}}} without {{{{end}}}}"),
    }
}

/// `$a, $b := pipeline` or a bare pipeline.
fn declaration(text: &str) -> Result<(Vec<String>, Pipeline)> {
    if text.starts_with('$')
        && let Some((names, rest)) = text.split_once(":=")
    {
        let names: Vec<String> = names.split(',').map(|n| n.trim().to_owned()).collect();
        if names.iter().all(|n| n.starts_with('$') && n.len() > 1) {
            return Ok((names, pipeline(rest.trim())?));
        }
    }
    Ok((Vec::new(), pipeline(text)?))
}

fn pipeline(text: &str) -> Result<Pipeline> {
    let mut lexer = Lexer { text, at: 0 };
    let pipeline = lexer.pipeline(false)?;
    if lexer.at < text.len() {
        bail!("template: unexpected {:?} in {text:?}", &text[lexer.at..]);
    }
    Ok(pipeline)
}

struct Lexer<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Lexer<'a> {
    fn skip_space(&mut self) {
        while self.rest().starts_with(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn pipeline(&mut self, in_group: bool) -> Result<Pipeline> {
        let mut commands = vec![Command { words: Vec::new() }];
        loop {
            self.skip_space();
            let rest = self.rest();
            if rest.is_empty() || (in_group && rest.starts_with(')')) {
                break;
            }
            if let Some(after) = rest.strip_prefix('|') {
                self.at = self.text.len() - after.len();
                commands.push(Command { words: Vec::new() });
                continue;
            }
            let word = self.word()?;
            commands.last_mut().expect("a command").words.push(word);
        }
        if commands.iter().any(|c| c.words.is_empty()) {
            bail!("template: missing value in {:?}", self.text);
        }
        Ok(commands)
    }

    fn word(&mut self) -> Result<Word> {
        let rest = self.rest();
        let first = rest.chars().next().expect("not at the end");
        if first == '(' {
            self.at += 1;
            let inner = self.pipeline(true)?;
            if !self.rest().starts_with(')') {
                bail!("template: unclosed '(' in {:?}", self.text);
            }
            self.at += 1;
            let fields = self.fields();
            return Ok(Word::Path(Root::Group(Box::new(inner)), fields));
        }
        if first == '"' || first == '`' {
            return self.string().map(|s| Word::Literal(Value::String(s)));
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '|' || c == ')' || c == '(')
            .unwrap_or(rest.len());
        let token = &rest[..end];
        self.at += end;
        if token == "." {
            return Ok(Word::Path(Root::Dot, Vec::new()));
        }
        if let Some(path) = token.strip_prefix('.') {
            return Ok(Word::Path(Root::Dot, split_fields(path)?));
        }
        if let Some(variable) = token.strip_prefix('$') {
            let (name, path) = variable.split_once('.').unwrap_or((variable, ""));
            let fields = if path.is_empty() {
                Vec::new()
            } else {
                split_fields(path)?
            };
            return Ok(Word::Path(Root::Variable(format!("${name}")), fields));
        }
        match token {
            "true" => return Ok(Word::Literal(Value::Bool(true))),
            "false" => return Ok(Word::Literal(Value::Bool(false))),
            "nil" => return Ok(Word::Literal(Value::Null)),
            _ => {}
        }
        if token.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
            let number: serde_json::Number = serde_json::from_str(token.trim_start_matches('+'))
                .map_err(|_| anyhow!("template: bad number syntax: {token:?}"))?;
            return Ok(Word::Literal(Value::Number(number)));
        }
        if token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !token.is_empty() {
            return Ok(Word::Function(token.to_owned()));
        }
        bail!("template: unexpected {token:?} in {:?}", self.text)
    }

    /// `.A.B` right after a parenthesis.
    fn fields(&mut self) -> Vec<String> {
        let rest = self.rest();
        if !rest.starts_with('.') {
            return Vec::new();
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '|' || c == ')' || c == '(')
            .unwrap_or(rest.len());
        self.at += end;
        rest[1..end].split('.').map(str::to_owned).collect()
    }

    fn string(&mut self) -> Result<String> {
        let rest = self.rest();
        if let Some(raw) = rest.strip_prefix('`') {
            let end = raw
                .find('`')
                .ok_or_else(|| anyhow!("template: unterminated raw string"))?;
            self.at += end + 2;
            return Ok(raw[..end].to_owned());
        }
        let mut end = 1;
        let bytes = rest.as_bytes();
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        if end >= bytes.len() {
            bail!("template: unterminated quoted string");
        }
        let quoted = &rest[..=end];
        self.at += end + 1;
        serde_json::from_str(quoted).map_err(|_| anyhow!("template: bad string {quoted}"))
    }
}

fn split_fields(path: &str) -> Result<Vec<String>> {
    let fields: Vec<String> = path.split('.').map(str::to_owned).collect();
    if fields
        .iter()
        .any(|f| f.is_empty() || !f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        bail!("template: bad field name in .{path}");
    }
    Ok(fields)
}

struct Scope<'a> {
    variables: Vec<(String, Value)>,
    headers: Option<Headers<'a>>,
}

impl Scope<'_> {
    fn nodes(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<()> {
        for node in nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Action { declare, pipeline } => {
                    let value = self.pipeline(pipeline, dot)?;
                    match declare.as_slice() {
                        [] => out.push_str(&printed(&value)),
                        [name] => self.variables.push((name.clone(), value)),
                        _ => bail!("template: too many declarations"),
                    }
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mut taken = false;
                    for (condition, body) in branches {
                        if truth(&self.pipeline(condition, dot)?) {
                            self.block(body, dot, out)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.block(otherwise, dot, out)?;
                    }
                }
                Node::With {
                    pipeline,
                    body,
                    otherwise,
                } => {
                    let value = self.pipeline(pipeline, dot)?;
                    match truth(&value) {
                        true => self.block(body, &value, out)?,
                        false => self.block(otherwise, dot, out)?,
                    }
                }
                Node::Range {
                    declare,
                    pipeline,
                    body,
                    otherwise,
                } => {
                    let value = self.pipeline(pipeline, dot)?;
                    let items: Vec<(Value, Value)> = match &value {
                        Value::Array(items) => items
                            .iter()
                            .enumerate()
                            .map(|(i, v)| (Value::from(i), v.clone()))
                            .collect(),
                        // Go ranges over a map in key order.
                        Value::Object(members) => {
                            let mut sorted: Vec<_> = members.iter().collect();
                            sorted.sort_by(|a, b| a.0.cmp(b.0));
                            sorted
                                .into_iter()
                                .map(|(k, v)| (Value::String(k.clone()), v.clone()))
                                .collect()
                        }
                        Value::Null => Vec::new(),
                        other => bail!("template: range can't iterate over {}", printed(other)),
                    };
                    if items.is_empty() {
                        self.block(otherwise, dot, out)?;
                    }
                    for (key, item) in items {
                        let depth = self.variables.len();
                        match declare.as_slice() {
                            [] => {}
                            [value] => self.variables.push((value.clone(), item.clone())),
                            [index, value] => {
                                self.variables.push((index.clone(), key));
                                self.variables.push((value.clone(), item.clone()));
                            }
                            _ => bail!("template: too many declarations in range"),
                        }
                        self.nodes(body, &item, out)?;
                        self.variables.truncate(depth);
                    }
                }
            }
        }
        Ok(())
    }

    /// Nodes whose variables end with them.
    fn block(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<()> {
        let depth = self.variables.len();
        let result = self.nodes(nodes, dot, out);
        self.variables.truncate(depth);
        result
    }

    fn pipeline(&mut self, pipeline: &Pipeline, dot: &Value) -> Result<Value> {
        let mut last = None;
        for command in pipeline {
            last = Some(self.command(command, dot, last.take())?);
        }
        Ok(last.unwrap_or(Value::Null))
    }

    fn command(&mut self, command: &Command, dot: &Value, piped: Option<Value>) -> Result<Value> {
        let (head, args) = command.words.split_first().expect("a word");
        match head {
            Word::Function(name) => {
                let mut values = args
                    .iter()
                    .map(|word| self.word(word, dot))
                    .collect::<Result<Vec<_>>>()?;
                values.extend(piped);
                self.call(name, &values)
            }
            word if args.is_empty() && piped.is_none() => self.word(word, dot),
            _ => bail!("template: can't give arguments to a value that is not a function"),
        }
    }

    fn word(&mut self, word: &Word, dot: &Value) -> Result<Value> {
        match word {
            Word::Literal(value) => Ok(value.clone()),
            Word::Function(name) => self.call(name, &[]),
            Word::Path(root, fields) => {
                let base = match root {
                    Root::Dot => dot.clone(),
                    Root::Variable(name) => self
                        .variables
                        .iter()
                        .rev()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                        .ok_or_else(|| anyhow!("template: undefined variable {name:?}"))?,
                    Root::Group(pipeline) => self.pipeline(pipeline, dot)?,
                };
                if let (Some(headers), Root::Dot) = (self.headers, root)
                    && !fields.is_empty()
                {
                    return Ok(Value::String(headers(&fields.join("."))));
                }
                fields
                    .iter()
                    .try_fold(base, |value, field| field_of(&value, field))
            }
        }
    }

    fn call(&mut self, name: &str, args: &[Value]) -> Result<Value> {
        let string = |i: usize| -> Result<String> {
            match args.get(i) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Ok(printed(other)),
                None => bail!("template: {name} needs an argument"),
            }
        };
        let number = |i: usize| -> Result<i64> {
            args.get(i)
                .and_then(Value::as_i64)
                .ok_or_else(|| anyhow!("template: {name} needs a number as argument {}", i + 1))
        };
        // A table's header keeps its names as they are.
        if self.headers.is_some()
            && matches!(
                name,
                "json" | "split" | "join" | "title" | "lower" | "upper" | "truncate"
            )
        {
            return Ok(Value::String(string(0)?));
        }
        Ok(match name {
            "json" => Value::String(
                args.first()
                    .map(Value::to_string)
                    .ok_or_else(|| anyhow!("template: json needs an argument"))?,
            ),
            "join" => {
                let separator = string(1)?;
                match args.first() {
                    Some(Value::Array(items)) => Value::String(
                        items
                            .iter()
                            .map(printed)
                            .collect::<Vec<_>>()
                            .join(&separator),
                    ),
                    Some(Value::Null) | None => Value::String(String::new()),
                    Some(other) => Value::String(printed(other)),
                }
            }
            "split" => Value::Array(
                string(0)?
                    .split(string(1)?.as_str())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ),
            "lower" => Value::String(string(0)?.to_lowercase()),
            "upper" => Value::String(string(0)?.to_uppercase()),
            "title" => Value::String(title(&string(0)?)),
            "pad" => {
                let text = string(0)?;
                match text.is_empty() {
                    true => Value::String(text),
                    false => Value::String(format!(
                        "{}{text}{}",
                        " ".repeat(number(1)?.max(0) as usize),
                        " ".repeat(number(2)?.max(0) as usize)
                    )),
                }
            }
            "truncate" => {
                let text = string(0)?;
                let length = number(1)?.max(0) as usize;
                Value::String(text.chars().take(length).collect())
            }
            "len" => Value::from(match args.first() {
                Some(Value::Array(items)) => items.len(),
                Some(Value::Object(members)) => members.len(),
                Some(Value::String(text)) => text.len(),
                Some(Value::Null) => 0,
                _ => bail!("template: len of a value that has none"),
            }),
            "index" => {
                let (first, keys) = args
                    .split_first()
                    .ok_or_else(|| anyhow!("template: index needs a value"))?;
                keys.iter().try_fold(first.clone(), |value, key| {
                    Ok::<_, anyhow::Error>(match (&value, key) {
                        (Value::Object(members), Value::String(k)) => {
                            members.get(k).cloned().unwrap_or(Value::Null)
                        }
                        (Value::Array(items), k) => {
                            let i = k.as_u64().ok_or_else(|| {
                                anyhow!("template: index of a list needs a number")
                            })? as usize;
                            items
                                .get(i)
                                .cloned()
                                .ok_or_else(|| anyhow!("template: index out of range: {i}"))?
                        }
                        (Value::Null, _) => Value::Null,
                        _ => bail!("template: can't index {}", printed(&value)),
                    })
                })?
            }
            "print" => Value::String(go_print(args, false)),
            "println" => Value::String(go_print(args, true) + "\n"),
            "printf" => Value::String(printf(&string(0)?, &args[1..])?),
            "eq" => {
                let first = args
                    .first()
                    .ok_or_else(|| anyhow!("template: eq needs arguments"))?;
                Value::Bool(args[1..].iter().any(|other| same(first, other)))
            }
            "ne" => Value::Bool(!same(
                args.first().unwrap_or(&Value::Null),
                args.get(1).unwrap_or(&Value::Null),
            )),
            "lt" | "le" | "gt" | "ge" => {
                let order = compare(
                    args.first().unwrap_or(&Value::Null),
                    args.get(1).unwrap_or(&Value::Null),
                )?;
                Value::Bool(match name {
                    "lt" => order.is_lt(),
                    "le" => order.is_le(),
                    "gt" => order.is_gt(),
                    _ => order.is_ge(),
                })
            }
            "and" => args
                .iter()
                .find(|v| !truth(v))
                .or(args.last())
                .cloned()
                .unwrap_or(Value::Null),
            "or" => args
                .iter()
                .find(|v| truth(v))
                .or(args.last())
                .cloned()
                .unwrap_or(Value::Null),
            "not" => Value::Bool(!truth(args.first().unwrap_or(&Value::Null))),
            other => bail!("template: function {other:?} not defined"),
        })
    }
}

/// A member of an object; a name differing only in case stands for a
/// JSON key, as a Go struct's field does (`.Status` for an event's
/// `status`).
fn field_of(value: &Value, field: &str) -> Result<Value> {
    match value {
        Value::Object(members) => members
            .get(field)
            .or_else(|| {
                members
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(field))
                    .map(|(_, value)| value)
            })
            .cloned()
            .ok_or_else(|| anyhow!("template: can't evaluate field {field}")),
        Value::Null => Ok(Value::Null),
        other => bail!(
            "template: can't evaluate field {field} in {}",
            printed(other)
        ),
    }
}

/// Go's truth: false, 0, nil, and empty strings, lists and maps are false.
fn truth(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(members) => !members.is_empty(),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .ok_or_else(|| anyhow!("template: incomparable numbers")),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => bail!("template: incompatible types for comparison"),
    }
}

/// A value as Go's fmt prints it with `%v`.
pub fn printed(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(printed).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(members) => {
            let mut sorted: Vec<_> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", printed(v)))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// Go's Sprint (spaces between operands when neither is a string) or
/// Sprintln (always spaces).
fn go_print(args: &[Value], line: bool) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let both_non_strings =
            i > 0 && !matches!(arg, Value::String(_)) && !matches!(args[i - 1], Value::String(_));
        if i > 0 && (line || both_non_strings) {
            out.push(' ');
        }
        out.push_str(&printed(arg));
    }
    out
}

/// Go's Sprintf for the verbs templates use: %s %v %d %q %%, with a width.
fn printf(format: &str, args: &[Value]) -> Result<String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if f == '-' || f.is_ascii_digit() {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let verb = chars
            .next()
            .ok_or_else(|| anyhow!("template: printf: a lone % at the end"))?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args.next();
        let text = match (verb, arg) {
            (_, None) => format!("%!{verb}(MISSING)"),
            ('q', Some(Value::String(s))) => Value::String(s.clone()).to_string(),
            ('d', Some(Value::Number(n))) => n.to_string(),
            ('s' | 'v' | 'd' | 'q', Some(value)) => printed(value),
            (other, _) => bail!("template: printf verb %{other} is not supported"),
        };
        let width: usize = flags.trim_start_matches('-').parse().unwrap_or(0);
        let pad = width.saturating_sub(text.chars().count());
        match flags.starts_with('-') {
            true => {
                let _ = write!(out, "{text}{}", " ".repeat(pad));
            }
            false => {
                let _ = write!(out, "{}{text}", " ".repeat(pad));
            }
        }
    }
    Ok(out)
}

/// strings.Title: each word's first letter upper-cased.
fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(template: &str, data: &Value) -> String {
        GoTemplate::parse(template)
            .unwrap()
            .execute(data, None)
            .unwrap()
    }

    #[test]
    fn templates_evaluate_as_go_text_template_does() {
        let data = serde_json::json!({
            "State": {"Pid": 42, "Status": "running", "Health": null},
            "Config": {"Labels": {"b": "2", "a": "1"}, "Env": ["A=1", "B=2"]},
            "Mounts": [{"Name": "v1", "RW": true}, {"Name": "v2", "RW": false}],
            "status": "start",
        });
        let cases = [
            ("{{.State.Pid}} {{.State.Status}}", "42 running"),
            ("{{index .Config.Labels \"a\"}}", "1"),
            ("{{range .Mounts}}{{.Name}},{{end}}", "v1,v2,"),
            (
                "{{range $i, $m := .Mounts}}{{$i}}={{$m.Name}} {{end}}",
                "0=v1 1=v2 ",
            ),
            (
                "{{range $k, $v := .Config.Labels}}{{$k}}{{$v}}{{end}}",
                "a1b2",
            ),
            ("{{join .Config.Env \",\"}}", "A=1,B=2"),
            ("{{json .Config.Env}}", "[\"A=1\",\"B=2\"]"),
            ("{{.Config.Env}}", "[A=1 B=2]"),
            ("{{.Config.Labels}}", "map[a:1 b:2]"),
            ("{{.State.Health}}", "<nil>"),
            (
                "{{if eq .State.Status \"running\"}}up{{else}}down{{end}}",
                "up",
            ),
            ("{{if .State.Health}}h{{else if .State.Pid}}p{{end}}", "p"),
            ("{{with .State}}{{.Status}}{{end}}", "running"),
            ("{{len .Mounts}} {{.Status}}", "2 start"),
            (
                "{{printf \"%-8s|%d\" .State.Status .State.Pid}}",
                "running |42",
            ),
            (
                "{{.State.Status | upper}} {{lower \"AB\"}} {{title \"a b\"}}",
                "RUNNING ab A B",
            ),
            (
                "{{(index .Mounts 1).Name}} {{index (split \"a:b\" \":\") 1}}",
                "v2 b",
            ),
            ("{{$x := .State.Pid}}{{$x}}", "42"),
            ("a  {{- .State.Pid -}}  b{{/* note */}}", "a42b"),
            ("{{range .Nothing}}x{{else}}none{{end}}", "none"),
            ("{{truncate .State.Status 3}}{{pad \"x\" 1 2}}|", "run x  |"),
            (
                "{{and .State.Pid .State.Status}} {{or .State.Health \"no\"}} {{not .State.Health}}",
                "running no true",
            ),
        ];
        for (template, expected) in cases {
            let data = if template.contains(".Nothing") {
                serde_json::json!({"Nothing": []})
            } else {
                data.clone()
            };
            assert_eq!(run(template, &data), expected, "{template}");
        }
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        for (template, said) in [
            ("{{.State", "unclosed action"),
            ("{{if .A}}x", "without {{end}}"),
            ("{{nope .A}}", "function \"nope\" not defined"),
            ("{{.A..B}}", "bad field name"),
        ] {
            let error = GoTemplate::parse(template)
                .and_then(|t| t.execute(&serde_json::json!({"A": 1}), None))
                .unwrap_err()
                .to_string();
            assert!(error.contains(said), "{template}: {error}");
        }
        let error = GoTemplate::parse("{{.Nope}}")
            .unwrap()
            .execute(&serde_json::json!({"A": 1}), None)
            .unwrap_err();
        assert!(error.to_string().contains("can't evaluate field Nope"));
    }
}
