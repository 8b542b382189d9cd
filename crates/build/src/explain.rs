//! Why a step missed the cache. Every step that runs leaves a note of
//! what it was made of (its inputs, and the files it copied or bound)
//! under the layers it stood on and its instruction; when the same
//! instruction on the same layers misses in a later build, the first input
//! that differs from the note is named (`src/App.class changed
//! (sha256:1a2b… → sha256:9f8e…)`), as BuildKit cannot (moby/buildkit#2567).

use keel_image::Digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One file of what a step copied or bound, as its checksum saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileEntry {
    pub name: String,
    pub mode: u32,
    /// `sha256:…` of a file, the target of a link, empty for a directory.
    pub content: String,
}

/// What a step that ran was made of.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Note {
    pub inputs: Value,
    pub files: Vec<FileEntry>,
}

/// Where the note of `instruction` run on the layers keyed `parent` is.
pub(crate) fn note_key(parent: &Digest, instruction: &str) -> Digest {
    Digest::of(format!("{parent} {instruction}").as_bytes())
}

/// Where the image a base name meant in the last build is noted.
pub(crate) fn base_key(name: &str) -> Digest {
    Digest::of(format!("FROM {name}").as_bytes())
}

/// A step's inputs, in the order a user thinks of them; any others after.
const ORDER: &[&str] = &[
    "run", "copy", "binds", "heredocs", "env", "user", "cwd", "network", "mounts", "dest", "dir",
    "uid", "gid", "mode", "unpack", "workdir",
];

/// The first difference between what a step was made of before (`old`)
/// and now (`new`).
pub(crate) fn why(old: &Note, new: &Note) -> String {
    let (Some(before), Some(now)) = (old.inputs.as_object(), new.inputs.as_object()) else {
        return "its inputs changed".to_owned();
    };
    let mut names: Vec<&str> = ORDER.to_vec();
    names.extend(
        before
            .keys()
            .chain(now.keys())
            .map(String::as_str)
            .filter(|name| !ORDER.contains(name)),
    );
    for name in names {
        let (was, is) = (before.get(name), now.get(name));
        if was == is {
            continue;
        }
        return match name {
            "copy" | "binds" => files_changed(&old.files, &new.files)
                .unwrap_or_else(|| format!("the files it reads changed ({})", change(was, is))),
            "env" => env_changed(was, is),
            _ => format!("{name} changed: {}", change(was, is)),
        };
    }
    "its inputs are the same: the step's earlier result is gone (builder prune)".to_owned()
}

/// `old → new`, each as compact JSON, cut short.
fn change(was: Option<&Value>, is: Option<&Value>) -> String {
    let show = |value: Option<&Value>| {
        let text = value.map_or_else(|| "none".to_owned(), Value::to_string);
        match text.char_indices().nth(60) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text,
        }
    };
    format!("{} → {}", show(was), show(is))
}

/// The first variable of the step's environment (its build args and ENV)
/// that differs.
fn env_changed(was: Option<&Value>, is: Option<&Value>) -> String {
    let (before, now) = (crate::config::strings(was), crate::config::strings(is));
    let name = |entry: &str| entry.split('=').next().unwrap_or_default().to_owned();
    for entry in &now {
        match before.iter().find(|old| name(old) == name(entry)) {
            Some(old) if old == entry => {}
            Some(old) => return format!("the variable {} changed: {old} → {entry}", name(entry)),
            None => return format!("the variable {} is new: {entry}", name(entry)),
        }
    }
    match before
        .iter()
        .find(|old| !now.iter().any(|e| name(e) == name(old)))
    {
        Some(old) => format!("the variable {} is gone (was {old})", name(old)),
        None => "its environment changed".to_owned(),
    }
}

/// The first file that differs between two listings, if one does.
fn files_changed(before: &[FileEntry], now: &[FileEntry]) -> Option<String> {
    for entry in now {
        match before.iter().find(|old| old.name == entry.name) {
            Some(old) if old == entry => {}
            Some(old) if old.content != entry.content => {
                return Some(format!(
                    "{} changed ({} → {})",
                    entry.name,
                    short(&old.content),
                    short(&entry.content)
                ));
            }
            Some(old) => {
                return Some(format!(
                    "the mode of {} changed ({:o} → {:o})",
                    entry.name,
                    old.mode & 0o7777,
                    entry.mode & 0o7777
                ));
            }
            None => return Some(format!("{} is new", entry.name)),
        }
    }
    before
        .iter()
        .find(|old| !now.iter().any(|entry| entry.name == old.name))
        .map(|old| format!("{} was removed", old.name))
}

/// A file's `sha256:` cut to 12 digits, as Docker shows ids.
fn short(content: &str) -> String {
    match content.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 => format!("sha256:{}…", &hex[..12]),
        _ => content.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(name: &str, content: &str) -> FileEntry {
        FileEntry {
            name: name.into(),
            mode: 0o100644,
            content: content.into(),
        }
    }

    fn note(inputs: Value, files: Vec<FileEntry>) -> Note {
        Note { inputs, files }
    }

    #[test]
    fn a_miss_names_the_first_input_that_differs() {
        let sha = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let old = note(
            json!({"copy": "1", "dest": "/app"}),
            vec![
                file("src", ""),
                file("src/App.class", &sha('a')),
                file("src/Old.class", &sha('c')),
            ],
        );
        let changed = note(
            json!({"copy": "2", "dest": "/app"}),
            vec![
                file("src", ""),
                file("src/App.class", &sha('b')),
                file("src/Old.class", &sha('c')),
            ],
        );
        assert_eq!(
            why(&old, &changed),
            "src/App.class changed (sha256:aaaaaaaaaaaa… → sha256:bbbbbbbbbbbb…)"
        );
        let removed = note(
            json!({"copy": "3", "dest": "/app"}),
            old.files[..2].to_vec(),
        );
        assert_eq!(why(&old, &removed), "src/Old.class was removed");
        let mut moded = old.files.clone();
        moded[1].mode = 0o100755;
        let moded = note(json!({"copy": "4", "dest": "/app"}), moded);
        assert_eq!(
            why(&old, &moded),
            "the mode of src/App.class changed (644 → 755)"
        );

        let run = |env: Value| note(json!({"run": ["sh"], "env": env}), vec![]);
        assert_eq!(
            why(
                &run(json!(["V=1", "P=/bin"])),
                &run(json!(["V=2", "P=/bin"]))
            ),
            "the variable V changed: V=1 → V=2"
        );
        assert_eq!(
            why(&run(json!(["P=/bin"])), &run(json!(["V=2", "P=/bin"]))),
            "the variable V is new: V=2"
        );
        assert_eq!(
            why(
                &note(json!({"run": ["sh"], "user": ""}), vec![]),
                &note(json!({"run": ["sh"], "user": "app"}), vec![])
            ),
            "user changed: \"\" → \"app\""
        );
    }
}
