//! Output as the docker CLI prints it: aligned tables (Go's tabwriter with
//! docker's settings), human sizes and ages, and `--format` templates.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::Value;

use crate::template::GoTemplate;

/// docker's table writer: minimum cell width 10, padding 3, spaces.
pub fn table(rows: &[Vec<String>]) -> String {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max((cell.chars().count() + PADDING).max(MIN_WIDTH));
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// go-units' HumanSizeWithPrecision(size, 3): decimal units, 3
/// significant digits ("4.26MB", "120B"), as lists show sizes.
pub fn human_size(bytes: u64) -> String {
    human_size_with_precision(bytes, 3)
}

/// go-units' HumanSizeWithPrecision: decimal units, `digits` significant
/// digits (`docker system df` uses 4).
pub fn human_size_with_precision(bytes: u64, digits: i32) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(size, digits), UNITS[unit])
}

/// go-units' BytesSize: binary units, 4 significant digits ("1.5MiB",
/// "7.68GiB"), as `stats` shows memory.
pub fn bytes_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    format!("{}{}", significant(size, 4), UNITS[unit])
}

/// Go's `%.{digits}g` for numbers below 10^digits: significant digits, no
/// trailing zeros.
fn significant(value: f64, digits: i32) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A `--format` template: Go's text/template (see [`crate::template`]),
/// with docker's `table` prefix for a header row and columns aligned at
/// its `\t`s, and the `\t` and `\n` escapes.
#[derive(Debug)]
pub struct Template {
    table: bool,
    body: GoTemplate,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self> {
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, text),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        Ok(Self {
            table,
            body: GoTemplate::parse(&body)?,
        })
    }

    /// Renders every row (a JSON object); `headers` names each field's
    /// column, as docker's table formats do.
    pub fn render(&self, rows: &[Value], headers: &BTreeMap<&str, &str>) -> Result<String> {
        let mut lines: Vec<String> = Vec::new();
        if self.table {
            let name = |field: &str| headers.get(field).copied().unwrap_or(field).to_owned();
            let dot = rows.first().cloned().unwrap_or(Value::Null);
            lines.push(self.body.execute(&dot, Some(&name))?);
        }
        for row in rows {
            lines.push(self.body.execute(row, None)?);
        }
        if self.table {
            let cells: Vec<Vec<String>> = lines
                .iter()
                .map(|l| l.split('\t').map(str::to_owned).collect())
                .collect();
            return Ok(table(&cells));
        }
        Ok(lines.iter().map(|l| format!("{l}\n")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(human_size(120), "120B");
        assert_eq!(human_size(4_261_550), "4.26MB");
        assert_eq!(human_size(4_000_000), "4MB");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(human_size(0), "0B");
        assert_eq!(bytes_size(1_572_864), "1.5MiB");
        assert_eq!(bytes_size(64 << 20), "64MiB");
        assert_eq!(bytes_size(8_246_337_208), "7.68GiB");
        assert_eq!(bytes_size(1000), "1000B");
    }

    #[test]
    fn tables_pad_columns_like_tabwriter() {
        let rows = vec![
            vec!["REPOSITORY".into(), "TAG".into(), "SIZE".into()],
            vec!["busybox".into(), "latest".into(), "4.26MB".into()],
        ];
        assert_eq!(
            table(&rows),
            "REPOSITORY   TAG       SIZE\nbusybox      latest    4.26MB\n"
        );
    }

    #[test]
    fn templates_fill_fields_tables_and_reject_what_they_cannot() {
        let row = serde_json::json!({"Repository": "busybox", "Tag": "1", "Labels": {"a": "b"}});
        let template = Template::parse("{{.Repository}}:{{.Tag}} {{index .Labels \"a\"}}").unwrap();
        assert_eq!(
            template
                .render(std::slice::from_ref(&row), &BTreeMap::new())
                .unwrap(),
            "busybox:1 b\n"
        );
        let headers = BTreeMap::from([("Repository", "REPOSITORY"), ("Tag", "TAG")]);
        let table = Template::parse("table {{.Repository}}\\t{{.Tag | upper}}").unwrap();
        assert_eq!(
            table.render(std::slice::from_ref(&row), &headers).unwrap(),
            "REPOSITORY   TAG\nbusybox      1\n"
        );
        assert!(Template::parse("{{.Repository | nope}}").is_ok());
        let error = Template::parse("{{.Nope}}")
            .unwrap()
            .render(&[row], &BTreeMap::new())
            .unwrap_err();
        assert!(error.to_string().contains("can't evaluate field Nope"));
    }
}
