//! `.dockerignore`, by Docker's rules (moby's patternmatcher): one pattern
//! a line, `#` comments, `!` for an exception, each pattern cleaned and
//! made relative; `*`, `?`, `[…]` and `\` as Go's filepath.Match within a
//! path part, `**` for any number of parts. A path is excluded when the
//! last pattern that matches it, or one of its parent directories, is not
//! an exception.

use std::path::Path;

use crate::copy::{clean, glob};

#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    parts: Vec<String>,
    exception: bool,
}

impl Ignore {
    /// The patterns of a `.dockerignore` file's text.
    pub fn parse(text: &str) -> Ignore {
        let patterns = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .filter_map(|line| {
                let (exception, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                // Cleaned as filepath.Clean does; one that climbs out of
                // the context names nothing in it.
                let cleaned = clean(pattern)?;
                Some(Pattern {
                    parts: cleaned.split('/').map(str::to_owned).collect(),
                    exception,
                })
            })
            .collect();
        Ignore { patterns }
    }

    /// The ignore file a build of `dockerfile` (a path in `context`) uses:
    /// `DOCKERFILE.dockerignore` beside it, else the context's
    /// `.dockerignore`, else none.
    pub fn for_build(context: &Path, dockerfile: &str) -> std::io::Result<Ignore> {
        for candidate in [
            context.join(format!("{dockerfile}.dockerignore")),
            context.join(".dockerignore"),
        ] {
            match std::fs::read_to_string(&candidate) {
                Ok(text) => return Ok(Ignore::parse(&text)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        Ok(Ignore::default())
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out.
    pub fn excludes(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            let hit = (1..=parts.len()).any(|end| matches(&pattern.parts, &parts[..end]));
            if hit {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether some exception could bring back a path below `dir`, an
    /// excluded directory (so a walk must still look inside it).
    pub fn may_include_below(&self, dir: &str) -> bool {
        let first = dir.split('/').next().unwrap_or_default();
        self.patterns.iter().any(|pattern| {
            pattern.exception
                && pattern.parts.first().is_some_and(|part| {
                    part == "**" || part.contains(['*', '?', '[']) || part == first
                })
        })
    }
}

/// Whether the pattern's parts match the path's parts, `**` taking any
/// number of them.
fn matches(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((part, rest)) if part == "**" => {
            (0..=path.len()).any(|skip| matches(rest, &path[skip..]))
        }
        Some((part, rest)) => match path.split_first() {
            Some((name, tail)) => glob(part, name) && matches(rest, tail),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_exclude_what_dockers_documentation_says_they_do() {
        let ignore = Ignore::parse(
            "# comment\n*/temp*\n*/*/temp*\ntemp?\n**/*.go\n*.md\n!README*.md\nREADME-secret.md\n/build\n",
        );
        let table = [
            ("somedir/temporary.txt", true),
            ("somedir/temp", true),
            ("temp.txt", false),
            ("somedir/subdir/temporary.txt", true),
            ("tempa", true),
            ("tempab", false),
            ("main.go", true),
            ("a/b/c/x.go", true),
            ("notes.md", true),
            ("README.md", false),
            ("README-extra.md", false),
            ("README-secret.md", true),
            ("build/out/bin", true),
            ("src/build", false),
            ("Dockerfile", false),
        ];
        for (path, excluded) in table {
            assert_eq!(ignore.excludes(path), excluded, "{path}");
        }
    }

    #[test]
    fn the_last_matching_pattern_wins_and_exceptions_reach_below_excluded_directories() {
        let ignore = Ignore::parse("logs\n!logs/keep.log\n");
        assert!(ignore.excludes("logs/other.log"));
        assert!(!ignore.excludes("logs/keep.log"));
        assert!(ignore.may_include_below("logs"));
        let ignore = Ignore::parse("!keep\n*\n");
        assert!(
            ignore.excludes("keep"),
            "a later * wins over an earlier exception"
        );
    }
}
