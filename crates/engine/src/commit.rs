//! `commit`: a container's read/write layer made a new image, whose config
//! is what the container runs (the image's, with the container's own
//! settings over it, as Docker's merge does) changed by Dockerfile
//! instructions.

use keel_image::{Cancel, Child, Digest, Reference};
use serde_json::{Map, Value, json};

use crate::Engine;
use crate::container::{Container, Status};
use crate::error::Result;

/// What `docker commit` takes besides the container.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `-c`: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL,
    /// USER, VOLUME or WORKDIR instructions.
    pub changes: Vec<String>,
    pub comment: String,
    pub author: String,
    /// Freeze a running container while its layer is read (Docker's
    /// default).
    pub pause: bool,
    pub reference: Option<Reference>,
    /// A container config (Docker's keys) whose set fields replace what
    /// the container runs, as the body of `POST /commit`.
    pub overrides: Map<String, Value>,
}

impl Engine {
    /// Makes an image of container `name`'s changes, unless `cancel`
    /// stops it; returns its id.
    pub fn commit(&self, name: &str, options: &CommitOptions, cancel: &Cancel) -> Result<Digest> {
        let container = self.container(name)?;
        let image: Digest = container.image_id.parse()?;
        let mut config = self.effective_config(&container, &image)?;
        for (field, value) in &options.overrides {
            let unset = match value {
                Value::Null => true,
                Value::String(text) => text.is_empty(),
                Value::Array(list) => list.is_empty(),
                Value::Object(map) => map.is_empty(),
                _ => false,
            };
            if !unset {
                config.insert(field.clone(), value.clone());
            }
        }
        keel_build::apply_changes(&mut config, &options.changes)?;
        let created_by = config
            .get("Cmd")
            .and_then(Value::as_array)
            .map(|cmd| {
                cmd.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let child = Child {
            created_by,
            config,
            container: Some(container.id.clone()),
            author: options.author.clone(),
            comment: options.comment.clone(),
            created: keel_time::now_rfc3339(),
        };
        let paused = options.pause
            && container.state.status == Status::Running
            && !container.state.paused
            && self.pause(&container.id).is_ok();
        let committed =
            self.images
                .commit(&container.id, &child, options.reference.as_ref(), cancel);
        if paused {
            self.unpause(&container.id).ok();
        }
        let id = committed?;
        let reference = options
            .reference
            .as_ref()
            .map(Reference::familiar)
            .unwrap_or_default();
        self.container_event(
            &container,
            "commit",
            &[
                ("comment", options.comment.clone()),
                ("imageID", id.to_string()),
                ("imageRef", reference),
            ],
        );
        Ok(id)
    }

    /// The image's container config with the container's settings over it.
    fn effective_config(
        &self,
        container: &Container,
        image: &Digest,
    ) -> Result<Map<String, Value>> {
        let raw: Value = serde_json::from_slice(&self.images.raw_config(image)?)
            .map_err(|error| keel_image::Error::BadConfig(error.to_string()))?;
        let mut config = match raw.get("config") {
            Some(Value::Object(config)) => config.clone(),
            _ => Map::new(),
        };
        let own = &container.config;
        let image_env: Vec<String> = config
            .get("Env")
            .and_then(Value::as_array)
            .map(|env| {
                env.iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let key = |entry: &str| entry.split_once('=').map_or(entry, |(k, _)| k).to_owned();
        let mut env = own.env.clone();
        env.extend(
            image_env
                .into_iter()
                .filter(|entry| !own.env.iter().any(|mine| key(mine) == key(entry))),
        );
        config.insert("Env".into(), json!(env));
        // A new entrypoint drops the image's command, as at create.
        match (&own.cmd, &own.entrypoint) {
            (Some(cmd), _) => {
                config.insert("Cmd".into(), json!(cmd));
            }
            (None, Some(_)) => {
                config.insert("Cmd".into(), Value::Null);
            }
            (None, None) => {}
        }
        if let Some(entrypoint) = &own.entrypoint {
            config.insert("Entrypoint".into(), json!(entrypoint));
        }
        for (field, value) in [("WorkingDir", &own.working_dir), ("User", &own.user)] {
            if let Some(value) = value {
                config.insert(field.into(), json!(value));
            }
        }
        if let Some(signal) = &own.stop_signal {
            config.insert("StopSignal".into(), json!(signal));
        }
        let labels = config.entry("Labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            for (name, value) in &own.labels {
                labels.insert(name.clone(), json!(value));
            }
        }
        Ok(config)
    }
}
