//! `build`: the builder run on the engine's image store with the engine's
//! executor, its result tagged with every name asked for.

use std::collections::BTreeMap;
use std::io::Read;

use keel_build::context::Context;
use keel_build::{BuildOptions, Progress};
use keel_image::{Cancel, Digest, Reference};
use keel_registry::AuthConfig;

use crate::Engine;
use crate::error::{Context as _, Result};
use crate::executor::{JobLimits, Steps};

/// A build as a frontend asks for it.
#[derive(Debug, Default)]
pub struct BuildRequest {
    /// The builder's options (the Dockerfile is read from the context).
    pub options: BuildOptions,
    /// Where the Dockerfile is in the context (`-f`; `Dockerfile`).
    pub dockerfile: String,
    /// `-t`: the names the image gets.
    pub tags: Vec<Reference>,
    /// What its RUN steps are limited to.
    pub limits: JobLimits,
    /// `--pull`: the base images are pulled first, even those here.
    pub pull: bool,
    /// Credentials by registry (`X-Registry-Config`), for the pulls.
    pub auths: BTreeMap<String, AuthConfig>,
}

impl Engine {
    /// Builds the image `request` describes from `context`, telling
    /// `progress` as it goes, unless `cancel` stops it; tags it. Returns
    /// its id.
    pub fn build(
        &self,
        context: &Context,
        request: &BuildRequest,
        cancel: &Cancel,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Digest> {
        // Refused before any step runs, not at the first RUN.
        crate::network::parse_extra_hosts(&request.options.extra_hosts)?;
        request.limits.resources.check()?;
        if request.pull {
            self.pull_bases(context, request, cancel, progress)?;
        }
        let steps = Steps {
            engine: self,
            limits: &request.limits,
        };
        let id = keel_build::build(
            &self.images,
            &steps,
            context,
            &self.file_sums,
            &request.options,
            cancel,
            progress,
        )?;
        for tag in &request.tags {
            self.images.tag(id.as_str(), tag)?;
            self.image_event(id.as_str(), &tag.familiar(), "tag");
        }
        Ok(id)
    }

    /// Pulls the images the build's stages start from, telling the
    /// pulls' own lines as the build's.
    fn pull_bases(
        &self,
        context: &Context,
        request: &BuildRequest,
        cancel: &Cancel,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<()> {
        for name in keel_build::base_images(context, &request.options)? {
            // With `latest` when the name has no tag or digest.
            let reference = Reference::parse(&name)?;
            let auth = request
                .auths
                .iter()
                .find(|(server, _)| keel_registry::server_domain(server) == reference.domain())
                .map(|(_, auth)| auth.clone());
            let lines = std::sync::Mutex::new(Vec::new());
            // The pull's own lines (`1: Pulling from …`, `Digest: …`,
            // `Status: …`), not each layer's (named by 12 hex digits).
            let report = |line: crate::Progress| {
                let text = match &line.id {
                    None => line.status,
                    Some(id) if id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                        return;
                    }
                    Some(id) => format!("{id}: {}", line.status),
                };
                lines.lock().unwrap_or_else(|p| p.into_inner()).push(text);
            };
            let pulled = self.pull(&reference, None, auth, &report, cancel);
            for line in lines.into_inner().unwrap_or_else(|p| p.into_inner()) {
                progress(Progress::Line(line));
            }
            pulled?;
        }
        Ok(())
    }

    /// [`Engine::build`] of a context sent as a tar: unpacked into a
    /// directory of the engine's, removed after the build.
    pub fn build_archive(
        &self,
        archive: impl Read,
        request: &BuildRequest,
        cancel: &Cancel,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Digest> {
        let dir = tempfile::Builder::new()
            .prefix("context-")
            .tempdir_in(&self.builds_dir)
            .context(|| format!("cannot make a directory in {}", self.builds_dir.display()))?;
        keel_build::context::unpack(archive, dir.path())?;
        let context = Context::unpacked(dir.path(), &request.dockerfile)?;
        self.build(&context, request, cancel, progress)
    }
}
