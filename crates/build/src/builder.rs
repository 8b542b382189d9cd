//! A build: the stages the target needs, each from its base (an image,
//! `scratch` or an earlier stage), step by step. Metadata steps change the
//! config only; RUN, COPY and ADD make layers, each cached under a key of
//! the layers it stands on and what it does (for RUN its command, its
//! environment, user, directory and network; for COPY the checksum of
//! the files it copies, never their times), so a step whose inputs did
//! not change is not run again whichever steps before it did.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use keel_errdefs::HasKind as _;
use keel_image::digest::chain_ids;
use keel_image::{Cancel, Digest, LayerBlob, Store};
use serde_json::{Map, Value, json};

use crate::config::{self, join_path};
use crate::context::Context;
use crate::copy::{self, Owner, Source, Visible};
use crate::dockerfile::{self, Args, Instruction};
use crate::error::{Error, Result};
use crate::expand::{self, Vars};
use crate::explain::{self, FileEntry, Note};
use crate::fetch;
use crate::mounts::{self, RunMount};
use crate::sums::FileSums;

/// What the ids of a build's step snapshots start with: a daemon that
/// finds such snapshots at its start removes them.
pub const STEP_SNAPSHOT_PREFIX: &str = "build-";

/// The build arg that makes a build reproducible, as in BuildKit.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// Which network a step's process sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JobNetwork {
    /// An address on the default bridge, as the classic builder's RUN
    /// containers have (`--network=default`).
    #[default]
    Bridge,
    /// A namespace of its own with only loopback (`none`).
    Isolated,
    /// The host's.
    Host,
}

/// What a job sees at a path besides its root.
#[derive(Debug, Clone)]
pub struct JobMount {
    pub kind: JobMountKind,
    pub target: String,
    pub readonly: bool,
}

#[derive(Debug, Clone)]
pub enum JobMountKind {
    /// A host directory, bound.
    Bind(PathBuf),
    /// An empty tmpfs, of at most `size` bytes.
    Tmpfs { size: Option<u64> },
}

/// A process to run on a snapshot, as the [`Executor`] runs it.
#[derive(Debug, Clone, Default)]
pub struct Job {
    pub snapshot: String,
    pub args: Vec<String>,
    /// The whole environment.
    pub env: Vec<String>,
    /// `/` when empty.
    pub cwd: String,
    /// `user[:group]`, by name or number; root when empty.
    pub user: String,
    pub network: JobNetwork,
    /// `--add-host`s: `NAME:IP` lines for its /etc/hosts.
    pub extra_hosts: Vec<String>,
    pub mounts: Vec<JobMount>,
}

/// Runs a step's process: the engine's executor (called from the
/// threads of stages that run at the same time).
pub trait Executor: Sync {
    /// Runs `job` to its end, handing on its output (1 stdout, 2 stderr);
    /// returns its exit code.
    fn execute(
        &self,
        job: &Job,
        cancel: &Cancel,
        output: &mut dyn FnMut(u8, &[u8]),
    ) -> std::result::Result<i32, String>;
}

/// `--secret`s: each secret's bytes by its id, for `RUN
/// --mount=type=secret`; shown by their ids only.
#[derive(Clone, Default)]
pub struct Secrets(pub BTreeMap<String, Vec<u8>>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// What `docker build` takes besides the context.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--target`: the stage to build (else the last).
    pub target: Option<String>,
    /// `--build-arg`: values for the ARGs the Dockerfile declares.
    pub build_args: BTreeMap<String, String>,
    /// `--label`: labels the image gets on top of its own.
    pub labels: BTreeMap<String, String>,
    /// `--no-cache`: every step runs.
    pub no_cache: bool,
    /// `--no-cache-filter`: the stages (by name) whose steps all run.
    pub no_cache_filter: Vec<String>,
    /// `--network` for RUN steps.
    pub network: JobNetwork,
    /// `--add-host`: `NAME:IP`s in the /etc/hosts of RUN steps.
    pub extra_hosts: Vec<String>,
    pub secrets: Secrets,
    /// `--explain-cache`: each step that misses the cache says why.
    pub explain_cache: bool,
}

/// What a build tells as it goes, in the classic builder's order: stage
/// after stage, each stage's steps in order, even when stages run at the
/// same time.
#[derive(Debug)]
pub enum Progress {
    /// `Step N/M : INSTRUCTION`.
    Step {
        number: usize,
        total: usize,
        text: String,
    },
    /// The step's result was in the cache.
    Cached,
    /// The step runs, as `id`.
    Running { id: String },
    /// Output of a RUN step.
    Output(Vec<u8>),
    /// The step's result, by a short id.
    Done { id: String },
    /// A line of the builder's own: a warning, the triggers it runs.
    Line(String),
}

/// A stage's state between steps: its image config and its layers.
#[derive(Debug, Clone)]
struct State {
    /// The whole image config (architecture, os, config, history, …).
    image: Map<String, Value>,
    layers: Vec<LayerBlob>,
    /// The image the stage started from (what its snapshots are of).
    base: Digest,
    /// The key of its files: what its layers were made from.
    key: Digest,
    /// A CMD was set in this stage (an ENTRYPOINT then keeps it).
    cmd_set: bool,
    /// When its files were last changed (RFC 3339): the time of its
    /// metadata steps and of the image, so that a build whose every step
    /// was cached gives the same image again, as BuildKit's does.
    time: String,
    /// Why its files are new in this build (a step ran, the base image
    /// changed): what a cache miss on them is explained by.
    new_because: Option<String>,
}

/// A step that makes a layer: what it is made of (its key's inputs, the
/// files it copies or binds) and how its history names it.
struct Step<'i> {
    instruction: &'i Instruction,
    inputs: Value,
    files: Vec<FileEntry>,
    created_by: String,
}

impl State {
    fn container_config(&mut self) -> &mut Map<String, Value> {
        config::object(&mut self.image, "config")
    }

    fn config(&self) -> Map<String, Value> {
        self.image
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// A short id of the state for the progress (of its files and its
    /// container config).
    fn id(&self) -> String {
        let config = serde_json::to_string(&self.config()).expect("json");
        Digest::of(format!("{} {config}", self.key).as_bytes()).hex()[..12].to_owned()
    }

    fn history(&mut self, created_by: String, empty: bool, created: &str) {
        let history = self.image.entry("history").or_insert_with(|| json!([]));
        if let Some(history) = history.as_array_mut() {
            let mut step = json!({"created": created, "created_by": created_by});
            if empty {
                step["empty_layer"] = json!(true);
            }
            history.push(step);
        }
    }
}

/// The files of a stage (or an image) a COPY --from reads, mounted; gone
/// when dropped.
pub(crate) struct StageRoot<'a> {
    store: &'a Store,
    id: String,
    root: PathBuf,
}

impl Drop for StageRoot<'_> {
    fn drop(&mut self) {
        // Removing the snapshot unmounts it.
        self.store.remove_snapshot(&self.id).ok();
    }
}

/// Sources a step selected, with the root they are in kept mounted and
/// what of it they may show.
pub(crate) type Selection<'a> = (Option<StageRoot<'a>>, Vec<Source>, Visible<'a>);

struct Stage<'a> {
    name: Option<String>,
    from: &'a Instruction,
    steps: &'a [Instruction],
}

/// One stage's build: what all stages share, and the stage's own step
/// count, ARGs used and snapshot counter.
struct Build<'a> {
    store: &'a Store,
    executor: &'a dyn Executor,
    context: &'a Context,
    sums: &'a FileSums,
    options: &'a BuildOptions,
    cancel: &'a Cancel,
    progress: &'a mut dyn FnMut(Progress),
    escape: char,
    /// The global ARGs (before the first FROM), with their values.
    global_args: &'a Vars,
    used_args: BTreeSet<String>,
    /// The last step announced, counted over the stages before this one.
    step: usize,
    total: usize,
    /// Snapshots named by the build's and the stage's id and a counter.
    build_id: String,
    snapshots: usize,
    /// `--no-cache`, or the stage is in `--no-cache-filter`.
    no_cache: bool,
    /// `SOURCE_DATE_EPOCH`: the time of every step and of the image, and
    /// the latest time of the files in its layers.
    epoch: Option<i64>,
}

/// The build arg `SOURCE_DATE_EPOCH` (seconds since 1970), as BuildKit
/// takes it for reproducible images.
fn source_date_epoch(options: &BuildOptions) -> Result<Option<i64>> {
    let Some(text) = options.build_args.get(SOURCE_DATE_EPOCH) else {
        return Ok(None);
    };
    text.trim().parse().map(Some).map_err(|_| {
        Error::InvalidArgument(format!(
            "invalid {SOURCE_DATE_EPOCH} {text:?}: use the number of seconds since 1970-01-01"
        ))
    })
}

/// Seconds since 1970 as an RFC 3339 time, whole seconds written as Go
/// writes them (`2023-11-14T22:13:20Z`).
fn epoch_time(seconds: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64);
    keel_time::rfc3339(time).replace(".000000000Z", "Z")
}

/// What a stage's thread tells the build: a progress event, or its end.
enum StageEvent {
    Progress(Progress),
    Built(Result<(State, BTreeSet<String>)>),
}

/// A Dockerfile's stages, the target, the global ARGs and the stages the
/// target needs (each with the stages it needs), as a build reads them.
struct Plan<'d> {
    stages: Vec<Stage<'d>>,
    target: usize,
    global_args: Vars,
    graph: BTreeMap<usize, Vec<usize>>,
}

impl<'d> Plan<'d> {
    fn of(dockerfile: &'d dockerfile::Dockerfile, options: &BuildOptions) -> Result<Plan<'d>> {
        if let Some(syntax) = &dockerfile.syntax {
            let frontend = syntax.trim_start_matches("docker.io/");
            if !frontend.starts_with("docker/dockerfile:") && frontend != "docker/dockerfile" {
                return Err(Error::InvalidArgument(format!(
                    "the frontend {syntax:?} of the syntax directive is not Keel's: Keel builds with its own Dockerfile frontend (docker/dockerfile:1); remove the directive or name docker/dockerfile"
                )));
            }
        }
        let first_from = dockerfile
            .instructions
            .iter()
            .position(|i| i.keyword == "FROM")
            .ok_or_else(|| {
                Error::InvalidArgument("the Dockerfile has no FROM instruction".into())
            })?;
        let mut global_args = Vars::new();
        for instruction in &dockerfile.instructions[..first_from] {
            if instruction.keyword != "ARG" {
                return Err(Error::Dockerfile {
                    line: instruction.line,
                    message: format!(
                        "{} before the first FROM: only ARG may come before it",
                        instruction.keyword
                    ),
                });
            }
            for (name, default) in arg_declarations(instruction, &global_args, dockerfile.escape)? {
                let value = options.build_args.get(&name).cloned().or(default);
                if let Some(value) = value {
                    global_args.insert(name, value);
                } else {
                    global_args.remove(&name);
                }
            }
        }
        for (name, value) in platform_args() {
            global_args.entry(name).or_insert(value);
        }
        let mut stages: Vec<Stage> = Vec::new();
        let rest = &dockerfile.instructions[first_from..];
        let mut starts: Vec<usize> = rest
            .iter()
            .enumerate()
            .filter(|(_, i)| i.keyword == "FROM")
            .map(|(at, _)| at)
            .collect();
        starts.push(rest.len());
        for pair in starts.windows(2) {
            let from = &rest[pair[0]];
            let words = from_words(from)?;
            let name = match words.as_slice() {
                [_] => None,
                [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
                    Some(name.to_ascii_lowercase())
                }
                _ => return Err(from.error("use FROM [--platform=PLATFORM] IMAGE [AS NAME]")),
            };
            stages.push(Stage {
                name,
                from,
                steps: &rest[pair[0] + 1..pair[1]],
            });
        }
        let target = match &options.target {
            Some(target) => stages
                .iter()
                .position(|s| s.name.as_deref() == Some(&target.to_ascii_lowercase()))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("target stage \"{target}\" could not be found"))
                })?,
            None => stages.len() - 1,
        };
        // Each stage the target needs, with the stages it needs.
        let graph = stage_graph(&stages, target, &global_args, dockerfile.escape)?;
        Ok(Plan {
            stages,
            target,
            global_args,
            graph,
        })
    }
}

/// The images a build of `context` starts its needed stages from (not
/// stages, not `scratch`): what `--pull` pulls first.
pub fn base_images(context: &Context, options: &BuildOptions) -> Result<Vec<String>> {
    let dockerfile = dockerfile::parse(&context.dockerfile)?;
    let plan = Plan::of(&dockerfile, options)?;
    let mut images = Vec::new();
    for &index in plan.graph.keys() {
        let from = plan.stages[index].from;
        let name = from.word(&from_words(from)?[0], &plan.global_args, dockerfile.escape)?;
        if name != "scratch"
            && stage_index(&plan.stages, &name, index).is_none()
            && !images.contains(&name)
        {
            images.push(name);
        }
    }
    Ok(images)
}

/// Builds the image `context`'s Dockerfile describes from its files,
/// hashing files with the help of `sums`; returns its id.
pub fn build(
    store: &Store,
    executor: &dyn Executor,
    context: &Context,
    sums: &FileSums,
    options: &BuildOptions,
    cancel: &Cancel,
    progress: &mut dyn FnMut(Progress),
) -> Result<Digest> {
    let dockerfile = dockerfile::parse(&context.dockerfile)?;
    let Plan {
        stages,
        target,
        global_args,
        graph,
    } = Plan::of(&dockerfile, options)?;
    let needed: Vec<usize> = graph.keys().copied().collect();
    let mut first_step = BTreeMap::new();
    let mut total = 0;
    for &index in &needed {
        first_step.insert(index, total);
        total += stages[index].steps.len() + 1;
    }
    total += options.labels.len();
    let build_id = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
    let epoch = source_date_epoch(options)?;
    // Every stage starts as soon as the stages it needs are built, on a
    // thread of its own; what it tells is shown in the stages' order.
    let (mut built, used_args) = std::thread::scope(|scope| {
        let (events, received) = std::sync::mpsc::channel::<(usize, StageEvent)>();
        let mut built: BTreeMap<usize, State> = BTreeMap::new();
        let mut used_args = BTreeSet::new();
        let mut started = BTreeSet::new();
        let mut running = 0;
        // The stage (by its place in `needed`) whose progress is shown as
        // it comes, and what the stages after it told meanwhile.
        let mut shown = 0;
        let mut held: BTreeMap<usize, Vec<Progress>> = BTreeMap::new();
        let mut failed: Option<Error> = None;
        loop {
            for (&index, deps) in &graph {
                let ready = failed.is_none()
                    && !started.contains(&index)
                    && deps.iter().all(|dep| built.contains_key(dep));
                if !ready {
                    continue;
                }
                started.insert(index);
                running += 1;
                let events = events.clone();
                let built = built.clone();
                let (stages, global_args, build_id) = (&stages, &global_args, &build_id);
                let step = first_step[&index];
                scope.spawn(move || {
                    let mut tell = |progress| {
                        events.send((index, StageEvent::Progress(progress))).ok();
                    };
                    let mut build = Build {
                        store,
                        executor,
                        context,
                        sums,
                        options,
                        cancel,
                        progress: &mut tell,
                        escape: dockerfile.escape,
                        global_args,
                        used_args: BTreeSet::new(),
                        step,
                        total,
                        build_id: format!("{build_id}-{index}"),
                        no_cache: options.no_cache
                            || stages[index].name.as_ref().is_some_and(|name| {
                                options
                                    .no_cache_filter
                                    .iter()
                                    .any(|f| f.eq_ignore_ascii_case(name))
                            }),
                        snapshots: 0,
                        epoch,
                    };
                    let result = build
                        .stage(stages, index, &built)
                        .map(|state| (state, std::mem::take(&mut build.used_args)));
                    events.send((index, StageEvent::Built(result))).ok();
                });
            }
            if running == 0 {
                break;
            }
            let (index, event) = received.recv().expect("a running stage tells its end");
            let order = needed
                .iter()
                .position(|&i| i == index)
                .expect("a needed stage");
            match event {
                StageEvent::Progress(event) if order == shown && failed.is_none() => {
                    progress(event)
                }
                StageEvent::Progress(event) => held.entry(order).or_default().push(event),
                StageEvent::Built(result) => {
                    running -= 1;
                    match result {
                        Ok((state, used)) => {
                            built.insert(index, state);
                            used_args.extend(used);
                        }
                        // The first failure ends the build: the stages
                        // still running are cancelled, its steps shown.
                        Err(error) => {
                            cancel.cancel();
                            let first = matches!(failed, None | Some(Error::Cancelled));
                            if first && !matches!(error, Error::Cancelled) {
                                if order != shown {
                                    held.remove(&order)
                                        .into_iter()
                                        .flatten()
                                        .for_each(&mut *progress);
                                }
                                failed = Some(error);
                            } else if failed.is_none() {
                                failed = Some(error);
                            }
                        }
                    }
                }
            }
            // The shown stage is built: the next one shows what it held.
            while failed.is_none() && needed.get(shown).is_some_and(|i| built.contains_key(i)) {
                shown += 1;
                held.remove(&shown)
                    .into_iter()
                    .flatten()
                    .for_each(&mut *progress);
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok((built, used_args)),
        }
    })?;
    let global_args = &global_args;
    let mut state = built.remove(&target).expect("the target was built");
    // `--label`s are LABEL steps at the end of the target's stage, as the
    // classic builder adds them, in the order of their names.
    let first_label = total - options.labels.len() + 1;
    for (number, (name, value)) in (first_label..).zip(&options.labels) {
        let text = format!("LABEL {name}={value}");
        config::object(state.container_config(), "Labels").insert(name.clone(), json!(value));
        let time = state.time.clone();
        state.history(format!("/bin/sh -c #(nop)  {text}"), true, &time);
        progress(Progress::Step {
            number,
            total,
            text,
        });
        progress(Progress::Done { id: state.id() });
    }
    let unused: Vec<&String> = options
        .build_args
        .keys()
        .filter(|name| {
            !used_args.contains(*name)
                && !global_args.contains_key(*name)
                && name.as_str() != SOURCE_DATE_EPOCH
        })
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        progress(Progress::Line(format!(
            "[Warning] One or more build-args [{}] were not consumed",
            names.join(" ")
        )));
    }
    let created = state.time.clone();
    state.image.insert("created".into(), json!(created));
    let diff_ids: Vec<&Digest> = state.layers.iter().map(|l| &l.diff_id).collect();
    state.image.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": diff_ids}),
    );
    state
        .image
        .entry("architecture")
        .or_insert_with(|| json!(keel_image::go_arch()));
    state.image.entry("os").or_insert_with(|| json!("linux"));
    let bytes = serde_json::to_vec(&state.image).expect("a config serializes");
    Ok(store.add_built_image(&bytes, &state.layers)?)
}

/// A step's cache key: the hash of what it depends on.
fn step_key(inputs: &Value) -> Digest {
    Digest::of(inputs.to_string().as_bytes())
}

/// A RUN's directory as a path to join to (`/` when unset).
fn cwd_or_root(cwd: &str) -> String {
    match cwd {
        "" => "/".to_owned(),
        cwd => cwd.to_owned(),
    }
}

/// The working directory of a container config (`/` when unset).
fn workdir(config: &Map<String, Value>) -> String {
    config
        .get("WorkingDir")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .unwrap_or("/")
        .to_owned()
}

/// Refuses a platform other than this machine's, the only one Keel
/// builds for.
pub fn check_platform(platform: &str) -> std::result::Result<(), String> {
    let this = format!("linux/{}", keel_image::go_arch());
    match platform == this {
        true => Ok(()),
        false => Err(format!(
            "platform {platform:?} is not this machine's ({this}): Keel builds for its own platform"
        )),
    }
}

/// This machine's platform ARGs, as BuildKit sets them.
fn platform_args() -> Vec<(String, String)> {
    let arch = keel_image::go_arch();
    let platform = format!("linux/{arch}");
    [
        ("TARGETPLATFORM", platform.clone()),
        ("TARGETOS", "linux".to_owned()),
        ("TARGETARCH", arch.to_owned()),
        ("TARGETVARIANT", String::new()),
        ("BUILDPLATFORM", platform),
        ("BUILDOS", "linux".to_owned()),
        ("BUILDARCH", arch.to_owned()),
        ("BUILDVARIANT", String::new()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// `ARG a=1 b`: the names declared and their defaults, expanded.
fn arg_declarations(
    instruction: &Instruction,
    vars: &Vars,
    escape: char,
) -> Result<Vec<(String, Option<String>)>> {
    instruction.only_flags(&[])?;
    let Args::Shell(text) = &instruction.args else {
        return Err(instruction.error("use ARG NAME[=DEFAULT]"));
    };
    if text.trim().is_empty() {
        return Err(instruction.error("ARG requires at least one argument"));
    }
    text.split_whitespace()
        .map(|declaration| match declaration.split_once('=') {
            Some((name, default)) => Ok((
                name.to_owned(),
                Some(instruction.word(default, vars, escape)?),
            )),
            None => Ok((declaration.to_owned(), None)),
        })
        .collect()
}

fn from_words(from: &Instruction) -> Result<Vec<String>> {
    from.only_flags(&["platform"])?;
    match &from.args {
        Args::Shell(text) => Ok(text.split_whitespace().map(str::to_owned).collect()),
        Args::Exec(_) => Err(from.error("use FROM [--platform=PLATFORM] IMAGE [AS NAME]")),
    }
}

/// The stages `target` needs (itself, its base stages, those it copies
/// or mounts from), each with the earlier stages it needs itself: the
/// others are not built.
fn stage_graph(
    stages: &[Stage],
    target: usize,
    args: &Vars,
    escape: char,
) -> Result<BTreeMap<usize, Vec<usize>>> {
    let mut graph = BTreeMap::new();
    let mut todo = vec![target];
    while let Some(index) = todo.pop() {
        if graph.contains_key(&index) {
            continue;
        }
        let stage = &stages[index];
        let base = stage.from.word(&from_words(stage.from)?[0], args, escape)?;
        let mut refs = vec![base];
        refs.extend(
            stage
                .steps
                .iter()
                .filter(|s| s.keyword == "COPY" || s.keyword == "ADD")
                .filter_map(|s| s.flag("from").map(|name| s.word(name, args, escape)))
                .collect::<Result<Vec<_>>>()?,
        );
        // RUN --mount=…,from=STAGE needs that stage too.
        refs.extend(
            stage
                .steps
                .iter()
                .filter(|s| s.keyword == "RUN")
                .flat_map(|s| {
                    s.flags
                        .iter()
                        .filter(|f| f.name == "mount")
                        .map(move |f| s.word(&f.value, args, escape))
                })
                .collect::<Result<Vec<_>>>()?
                .iter()
                .flat_map(|value| value.split(','))
                .filter_map(|field| field.strip_prefix("from=").map(str::to_owned)),
        );
        let deps: BTreeSet<usize> = refs
            .iter()
            .filter_map(|name| stage_index(stages, name, index))
            .collect();
        todo.extend(&deps);
        graph.insert(index, deps.into_iter().collect());
    }
    Ok(graph)
}

/// The earlier stage `name` means (by name or index), if it means one.
fn stage_index(stages: &[Stage], name: &str, before: usize) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    if let Some(found) = stages[..before]
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Some(found);
    }
    name.parse::<usize>().ok().filter(|&i| i < before)
}

impl<'a> Build<'a> {
    fn announce(&mut self, instruction: &Instruction) {
        self.step += 1;
        (self.progress)(Progress::Step {
            number: self.step,
            total: self.total,
            text: instruction.original.clone(),
        });
    }

    fn stage(
        &mut self,
        stages: &[Stage],
        index: usize,
        built: &BTreeMap<usize, State>,
    ) -> Result<State> {
        let stage = &stages[index];
        self.announce(stage.from);
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let from_words = from_words(stage.from)?;
        let base_name = stage
            .from
            .word(&from_words[0], self.global_args, self.escape)?;
        if let Some(platform) = stage.from.flag("platform") {
            let platform = stage.from.word(platform, self.global_args, self.escape)?;
            check_platform(&platform).map_err(|message| stage.from.error(message))?;
        }
        let mut state = match stage_index(stages, &base_name, index) {
            Some(earlier) => built[&earlier].clone(),
            None if base_name == "scratch" => State {
                image: Map::new(),
                layers: Vec::new(),
                base: Digest::of(b""),
                key: Digest::of(b"FROM scratch"),
                cmd_set: false,
                time: keel_time::now_rfc3339(),
                new_because: None,
            },
            None => {
                let id = self.store.resolve(&base_name).map_err(|error| match error {
                    keel_image::Error::NoSuchImage(_) => stage.from.error(format!(
                        "pull access denied for {base_name}: no such image here; pull it first (keel pull {base_name}) or build it"
                    )),
                    other => other.into(),
                })?;
                let image: Map<String, Value> =
                    serde_json::from_slice(&self.store.raw_config(&id)?).map_err(|e| {
                        Error::InvalidArgument(format!("the config of {base_name}: {e}"))
                    })?;
                let layers = self.store.image(&id)?.layers;
                let time = image
                    .get("created")
                    .and_then(Value::as_str)
                    .map_or_else(keel_time::now_rfc3339, str::to_owned);
                // The image the name meant last time: if it changed, its
                // steps miss because of it.
                let noted = explain::base_key(&base_name);
                let before = self.store.cached_note(&noted)?;
                let new_because = match before {
                    Some(before) if before == id.as_str().as_bytes() => None,
                    before => {
                        self.store.cache_note(&noted, id.as_str().as_bytes())?;
                        before.map(|before| {
                            let before: std::result::Result<Digest, _> =
                                String::from_utf8_lossy(&before).parse();
                            format!(
                                "the base image {base_name} changed ({} → {})",
                                before.map_or_else(|_| "?".into(), |b| b.short().to_owned()),
                                id.short()
                            )
                        })
                    }
                };
                State {
                    image,
                    time,
                    layers,
                    key: Digest::of(format!("FROM {id}").as_bytes()),
                    base: id,
                    cmd_set: false,
                    new_because,
                }
            }
        };
        state.cmd_set = false;
        if let Some(epoch) = self.epoch {
            state.time = epoch_time(epoch);
        }
        let mut args = Vars::new();
        // The base's ONBUILD triggers run as part of FROM, and are not
        // the new image's.
        let triggers = config::strings(state.container_config().remove("OnBuild").as_ref());
        if !triggers.is_empty() {
            let plural = if triggers.len() > 1 { "s" } else { "" };
            (self.progress)(Progress::Line(format!(
                "# Executing {} build trigger{plural}",
                triggers.len()
            )));
        }
        for trigger in &triggers {
            let parsed = dockerfile::parse(trigger)?;
            let [instruction] = parsed.instructions.as_slice() else {
                return Err(stage.from.error(format!(
                    "the ONBUILD trigger {trigger:?} of {base_name} should be a single instruction"
                )));
            };
            self.step_on(
                &mut state,
                &mut args,
                instruction,
                stages,
                index,
                built,
                false,
            )?;
        }
        let id = state.id();
        (self.progress)(Progress::Done { id });
        for instruction in stage.steps {
            self.announce(instruction);
            if self.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            self.step_on(
                &mut state,
                &mut args,
                instruction,
                stages,
                index,
                built,
                true,
            )?;
        }
        Ok(state)
    }

    /// The variables a step's arguments expand with: the stage's ARGs,
    /// then its ENV (which wins).
    fn vars(&self, state: &State, args: &Vars) -> Vars {
        let mut vars = args.clone();
        vars.extend(config::env_vars(&state.config()));
        vars
    }

    /// Carries out `instruction` on `state`; a step of the Dockerfile
    /// (not a trigger run within FROM) tells its result.
    #[allow(clippy::too_many_arguments)]
    fn step_on(
        &mut self,
        state: &mut State,
        args: &mut Vars,
        instruction: &Instruction,
        stages: &[Stage],
        index: usize,
        built: &BTreeMap<usize, State>,
        step: bool,
    ) -> Result<()> {
        // When a step that runs is made; metadata steps take the time of
        // the files they describe.
        let created = self.epoch.map_or_else(keel_time::now_rfc3339, epoch_time);
        let vars = self.vars(state, args);
        match instruction.keyword.as_str() {
            "ARG" => {
                for (name, default) in arg_declarations(instruction, &vars, self.escape)? {
                    self.used_args.insert(name.clone());
                    let value = self
                        .options
                        .build_args
                        .get(&name)
                        .cloned()
                        .or(default)
                        .or_else(|| self.global_args.get(&name).cloned());
                    match value {
                        Some(value) => args.insert(name, value),
                        None => args.remove(&name),
                    };
                }
                let time = state.time.clone();
                state.history(
                    format!("/bin/sh -c #(nop)  {}", instruction.original),
                    true,
                    &time,
                );
            }
            "RUN" => self.run(state, args, instruction, stages, index, built, &created)?,
            "COPY" | "ADD" => {
                self.copy(state, &vars, instruction, stages, index, built, &created)?
            }
            "MAINTAINER" => {
                let Args::Shell(text) = &instruction.args else {
                    return Err(instruction.error("use MAINTAINER NAME"));
                };
                state.image.insert("author".into(), json!(text.trim()));
                let time = state.time.clone();
                state.history(
                    format!("/bin/sh -c #(nop)  {}", instruction.original),
                    true,
                    &time,
                );
            }
            _ => {
                let mut cmd_set = state.cmd_set;
                config::apply(
                    state.container_config(),
                    instruction,
                    &vars,
                    self.escape,
                    &mut cmd_set,
                )?;
                state.cmd_set = cmd_set;
                let created_by = format!("/bin/sh -c #(nop)  {}", instruction.original);
                match instruction.keyword.as_str() {
                    // The directory is made, as Docker's, whether or not
                    // a later step uses it: a layer only if it was not there.
                    "WORKDIR" => self.make_workdir(state, instruction, created_by, &created)?,
                    _ => {
                        let time = state.time.clone();
                        state.history(created_by, true, &time)
                    }
                }
            }
        }
        if step {
            let id = state.id();
            (self.progress)(Progress::Done { id });
        }
        Ok(())
    }

    /// A new step snapshot's id: the prefix and 24 hex digits, the last
    /// 12 of which name the step as it runs.
    fn next_snapshot(&mut self) -> String {
        self.snapshots += 1;
        let unique = Digest::of(format!("{}-{}", self.build_id, self.snapshots).as_bytes());
        format!("{STEP_SNAPSHOT_PREFIX}{}", &unique.hex()[..24])
    }

    /// Runs `step` on `state` unless the cache has it: `work` changes the
    /// new snapshot's files (and says what to tell). A step that ran
    /// leaves a note of what it was made of, which explains the next
    /// build's miss (`--explain-cache`).
    fn cached_or(
        &mut self,
        state: &mut State,
        step: Step,
        created: &str,
        work: &mut dyn FnMut(&mut Self, &str, &Path) -> Result<()>,
    ) -> Result<()> {
        let mut inputs = step.inputs;
        inputs["parent"] = json!(state.key);
        // Its files' times depend on the epoch.
        if let Some(epoch) = self.epoch {
            inputs[SOURCE_DATE_EPOCH] = json!(epoch);
        }
        let key = step_key(&inputs);
        let cached = match self.no_cache {
            true => None,
            false => self.store.cached_step(&key)?,
        };
        let made = match cached {
            Some(made) => {
                (self.progress)(Progress::Cached);
                made
            }
            None => {
                let note = Note {
                    inputs,
                    files: step.files,
                };
                let note_key = explain::note_key(&state.key, &step.instruction.original);
                if self.options.explain_cache {
                    let why = self.why_missed(state, &note_key, &note)?;
                    (self.progress)(Progress::Line(format!(" ---> Cache miss: {why}")));
                }
                let id = self.next_snapshot();
                let snapshot = self
                    .store
                    .create_step_snapshot(&id, &state.base, &state.layers)?;
                let result = self
                    .store
                    .mount_snapshot(&snapshot)
                    .map_err(Error::from)
                    .and_then(|root| work(self, &id, &root))
                    .and_then(|()| {
                        Ok(self
                            .store
                            .cache_step(&id, &state.layers, &key, created, self.epoch)?)
                    });
                // Removing it unmounts it.
                self.store.remove_snapshot(&id).ok();
                let made = result?;
                let note = serde_json::to_vec(&note).expect("a note serializes");
                self.store.cache_note(&note_key, &note)?;
                state.new_because = Some(format!("step {} before it ran", self.step));
                made
            }
        };
        let empty = !made.added;
        state.layers = made.layers;
        state.key = key;
        state.time = made.created.clone();
        state.history(step.created_by, empty, &made.created);
        Ok(())
    }

    /// Why the step noted `note` under `note_key` missed the cache.
    fn why_missed(&self, state: &State, note_key: &Digest, note: &Note) -> Result<String> {
        if self.no_cache {
            let flag = match self.options.no_cache {
                true => "--no-cache",
                false => "--no-cache-filter",
            };
            return Ok(flag.to_owned());
        }
        if let Some(why) = &state.new_because {
            return Ok(why.clone());
        }
        Ok(match self.store.cached_note(note_key)? {
            Some(old) => match serde_json::from_slice::<Note>(&old) {
                Ok(old) => explain::why(&old, note),
                Err(_) => "no readable note of its last build".to_owned(),
            },
            None => "no earlier build of this instruction on these layers".to_owned(),
        })
    }

    fn make_workdir(
        &mut self,
        state: &mut State,
        instruction: &Instruction,
        created_by: String,
        created: &str,
    ) -> Result<()> {
        let dir = workdir(&state.config());
        let step = Step {
            instruction,
            inputs: json!({"workdir": dir}),
            files: Vec::new(),
            created_by,
        };
        self.cached_or(state, step, created, &mut |_, _, root| {
            let root = copy::open_root(root)?;
            copy::make_dirs(&root, &dir, Owner::default()).map(drop)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        state: &mut State,
        args: &Vars,
        instruction: &Instruction,
        stages: &[Stage],
        index: usize,
        built: &BTreeMap<usize, State>,
        created: &str,
    ) -> Result<()> {
        instruction.only_flags(&["network", "mount"])?;
        let mounts = instruction
            .flags
            .iter()
            .filter(|flag| flag.name == "mount")
            .map(|flag| {
                let value = instruction.word(&flag.value, args, self.escape)?;
                mounts::parse(instruction, &value)
            })
            .collect::<Result<Vec<_>>>()?;
        // A bind's files are part of the step's inputs, as a COPY's.
        let mut binds = Vec::new();
        let mut bound_files = Vec::new();
        for mount in &mounts {
            if let RunMount::Bind { source, from, .. } = mount {
                let from = match from {
                    Some(name) => Some(self.files_of(instruction, name, stages, index, built)?),
                    None => None,
                };
                let (sum, files, selection) = self.selection_sum(
                    instruction,
                    from.as_ref(),
                    std::slice::from_ref(source),
                    &[],
                    None,
                )?;
                bound_files.extend(files);
                binds.push((from, sum, selection));
            }
        }
        let network = match instruction.flag("network") {
            None | Some("default") => self.options.network,
            Some("none") => JobNetwork::Isolated,
            Some("host") => JobNetwork::Host,
            Some(other) => {
                return Err(instruction.error(format!(
                    "--network={other} is not a network: use default, none or host"
                )));
            }
        };
        let config = state.config();
        let argv = match (&instruction.args, instruction.heredocs.as_slice()) {
            (Args::Shell(text), [heredoc])
                if text.trim().starts_with("<<") && !text.trim().contains(char::is_whitespace) =>
            {
                let mut argv = config::shell(&config);
                argv.push(heredoc.content.clone());
                argv
            }
            (_, []) => config::command(&config, &instruction.args),
            _ => {
                return Err(instruction.error(
                    "a heredoc that is not the whole command is not supported: use RUN <<EOF with the script as the heredoc",
                ));
            }
        };
        // Build args reach RUN as environment, under the image's ENV.
        let env_list = config::list(&config, "Env");
        let mut env: Vec<String> = args
            .iter()
            .filter(|(name, _)| {
                !env_list
                    .iter()
                    .any(|e| e.split('=').next() == Some(name.as_str()))
            })
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        env.extend(env_list.iter().cloned());
        let cwd = config
            .get("WorkingDir")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let user = config
            .get("User")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let inputs = json!({
            "run": argv, "env": env, "cwd": cwd, "user": user,
            "network": format!("{network:?}"), "mounts": mounts,
            "binds": binds.iter().map(|(_, sum, _)| sum).collect::<Vec<_>>(),
        });
        let command = argv.join(" ");
        let used: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let created_by = match used.is_empty() {
            true => command.clone(),
            false => format!("|{} {} {command}", used.len(), used.join(" ")),
        };
        let step = Step {
            instruction,
            inputs,
            files: bound_files,
            created_by,
        };
        self.cached_or(state, step, created, &mut |build, id, root| {
            (build.progress)(Progress::Running {
                id: id[id.len() - 12..].to_owned(),
            });
            let root_fd = copy::open_root(root)?;
            if !cwd.is_empty() {
                copy::make_dirs(&root_fd, &cwd, Owner::default())?;
            }
            // Held until the step ends: cache locks, private caches,
            // binds' copies.
            let mut prepared = Vec::new();
            let mut env = env.clone();
            let mut binds = binds.iter_mut();
            for mount in &mounts {
                let mut secret = None;
                if let RunMount::Secret {
                    id, env: variable, required, ..
                } = mount
                {
                    // A secret the build was not given is left out,
                    // unless it is required.
                    let Some(bytes) = build.options.secrets.0.get(id) else {
                        if *required {
                            return Err(instruction.error(format!(
                                "secret {id}: not found: give it with keel build --secret id={id},src=FILE"
                            )));
                        }
                        continue;
                    };
                    if let Some(variable) = variable {
                        env.push(format!("{variable}={}", String::from_utf8_lossy(bytes)));
                    }
                    secret = Some(bytes.as_slice());
                }
                let Some(target) = mount.target() else {
                    continue;
                };
                let target = join_path(&cwd_or_root(&cwd), target);
                let selection = match mount {
                    RunMount::Bind { source, .. } => {
                        let (from, _, selection) = binds.next().expect("one per bind");
                        Some(match selection.take() {
                            Some(selection) => selection,
                            None => build.select(
                                instruction,
                                from.as_ref(),
                                std::slice::from_ref(source),
                            )?,
                        })
                    }
                    _ => None,
                };
                prepared.push(mounts::prepare(
                    build.store,
                    mount,
                    target,
                    &root_fd,
                    selection,
                    secret,
                )?);
            }
            let job = Job {
                snapshot: id.to_owned(),
                args: argv.clone(),
                env,
                cwd: cwd.clone(),
                user: user.clone(),
                network,
                extra_hosts: build.options.extra_hosts.clone(),
                mounts: prepared.iter().map(|p| p.mount.clone()).collect(),
            };
            let progress = &mut build.progress;
            let code = build
                .executor
                .execute(&job, build.cancel, &mut |_, bytes| {
                    (progress)(Progress::Output(bytes.to_vec()))
                })
                .map_err(Error::Executor)?;
            if build.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            match code {
                0 => Ok(()),
                code => Err(Error::Failed {
                    command: command.clone(),
                    code,
                }),
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &mut self,
        state: &mut State,
        vars: &Vars,
        instruction: &Instruction,
        stages: &[Stage],
        index: usize,
        built: &BTreeMap<usize, State>,
        created: &str,
    ) -> Result<()> {
        instruction.only_flags(&[
            "from", "chown", "chmod", "link", "exclude", "parents", "checksum",
        ])?;
        let word = |text: &str| instruction.word(text, vars, self.escape);
        // --exclude: patterns of files not copied, relative to each source.
        let exclude_patterns = instruction
            .flags
            .iter()
            .filter(|flag| flag.name == "exclude")
            .map(|flag| word(&flag.value))
            .collect::<Result<Vec<_>>>()?;
        let exclude = (!exclude_patterns.is_empty())
            .then(|| crate::Ignore::parse(&exclude_patterns.join("\n")));
        // --parents: each source keeps its directories (those after a
        // `/./` in its path, if it has one).
        let parents = match instruction.flag("parents") {
            None | Some("false") => false,
            Some("" | "true") => true,
            Some(other) => {
                return Err(instruction.error(format!(
                    "invalid --parents={other}: use --parents, --parents=true or --parents=false"
                )));
            }
        };
        let mut words = match &instruction.args {
            Args::Exec(list) => list.iter().map(|w| word(w)).collect::<Result<Vec<_>>>()?,
            Args::Shell(text) => instruction.words(text, vars, self.escape)?,
        };
        if words.len() < 2 {
            return Err(instruction.error(format!(
                "{} requires at least two arguments, but only one was provided. Destination could not be determined",
                instruction.keyword
            )));
        }
        let dest_word = words.pop().expect("two words");
        let workdir = workdir(&state.config());
        let dest_is_dir = dest_word.ends_with('/')
            || dest_word == "."
            || dest_word.ends_with("/.")
            || words.len() > 1;
        let dest = join_path(&workdir, &dest_word);
        // ADD's URLs are downloaded into a directory of the step's own,
        // which is then their sources' root.
        let urls = words.iter().filter(|w| fetch::is_url(w)).count();
        let checksum = match instruction.flag("checksum") {
            None => None,
            Some(value) => {
                Some(fetch::parse_checksum(&word(value)?).map_err(|e| instruction.error(e))?)
            }
        };
        match instruction.keyword.as_str() {
            "COPY" if urls > 0 => return Err(instruction.error("source can't be a URL for COPY")),
            "COPY" if checksum.is_some() => {
                return Err(instruction.error("checksum can't be specified for COPY"));
            }
            _ if checksum.is_some() && words.len() != 1 => {
                return Err(instruction.error("checksum can't be specified for multiple sources"));
            }
            _ if checksum.is_some() && urls == 0 => {
                return Err(instruction.error("checksum requires HTTP(S) sources"));
            }
            _ if urls > 0 && (urls != words.len() || instruction.flag("from").is_some()) => {
                return Err(instruction.error(
                    "an ADD of URLs takes URLs only: ADD the local files or those of --from in an ADD of their own",
                ));
            }
            _ => {}
        }
        let downloads = match urls {
            0 => None,
            _ => Some(self.store.scratch_dir(0o700, 0, 0)?),
        };
        let mut url_names: Vec<String> = Vec::new();
        for url in words.iter().filter(|w| fetch::is_url(w)) {
            let name = fetch::file_name(url);
            if url_names.contains(&name) {
                return Err(instruction.error(format!(
                    "two URLs of this ADD name the file {name}: ADD them one at a time"
                )));
            }
            url_names.push(name);
        }
        // The sources come from the context, or from a stage's or an
        // image's files (mounted only when they must be read).
        let from = match instruction.flag("from") {
            None => None,
            Some(name) => Some(self.files_of(instruction, &word(name)?, stages, index, built)?),
        };
        let mut patterns = Vec::new();
        // Per pattern, the directories its sources' kept paths start below.
        let mut pivots = Vec::new();
        let mut heredoc_files = Vec::new();
        for word in words {
            let Some(name) = word.strip_prefix("<<") else {
                let (pivot, pattern) = match word.split_once("/./") {
                    Some((pivot, rest)) if parents => (
                        copy::clean(pivot).unwrap_or_default(),
                        format!("{pivot}/{rest}"),
                    ),
                    _ => (String::new(), word),
                };
                pivots.push(pivot);
                patterns.push(pattern);
                continue;
            };
            let name = name.trim_start_matches('-').trim_matches(['"', '\'']);
            let heredoc = instruction
                .heredocs
                .iter()
                .find(|h| h.name == name)
                .ok_or_else(|| instruction.error(format!("no heredoc named {name}")))?;
            let content = match heredoc.quoted {
                true => heredoc.content.clone(),
                false => expand::word(&heredoc.content, vars, self.escape)
                    .unwrap_or_else(|_| heredoc.content.clone()),
            };
            heredoc_files.push((name.to_owned(), content));
        }
        let owner = self.owner(state, instruction, vars)?;
        // The URLs' files, downloaded now unless a checksum names their
        // content (then only a cache miss downloads them).
        let fetch_all = |build: &Build| -> Result<Selection<'a>> {
            let dir = downloads.as_ref().expect("a directory for the downloads");
            for (url, name) in patterns.iter().zip(&url_names) {
                fetch::download(url, dir.path(), name, checksum.as_deref(), build.cancel).map_err(
                    |e| match e {
                        Error::Cancelled => Error::Cancelled,
                        e => instruction.error(e.to_string()),
                    },
                )?;
            }
            let mut sources = Vec::new();
            for name in &url_names {
                sources.extend(copy::sources(
                    dir.path(),
                    name,
                    "ADD failed",
                    Visible::default(),
                )?);
            }
            Ok((None, sources, Visible::default()))
        };
        let (digest, files, mut selected) = match (&downloads, &checksum) {
            (None, _) => self.selection_sum(
                instruction,
                from.as_ref(),
                &patterns,
                &exclude_patterns,
                exclude.as_ref(),
            )?,
            (Some(_), Some(checksum)) => (checksum.clone(), Vec::new(), None),
            (Some(_), None) => {
                let selection = fetch_all(self)?;
                let (sum, files) = copy::checksum(&selection.1, selection.2, self.sums)?;
                (sum, files, Some(selection))
            }
        };
        // ADD unpacks local archives (not those of another stage, nor
        // downloads).
        let unpacks = instruction.keyword == "ADD" && from.is_none() && downloads.is_none();
        let inputs = json!({
            "copy": digest, "dest": dest, "dir": dest_is_dir, "unpack": unpacks,
            "uid": owner.uid, "gid": owner.gid, "mode": owner.mode, "heredocs": heredoc_files,
            "parents": parents.then_some(&pivots),
        });
        let created_by = format!(
            "/bin/sh -c #(nop) {} {digest:.12} in {dest} ",
            instruction.keyword
        );
        let step = Step {
            instruction,
            inputs,
            files,
            created_by,
        };
        self.cached_or(state, step, created, &mut |build, _, root| {
            let (_root, sources, visible) = match selected.take() {
                Some(selected) => selected,
                None if downloads.is_some() => fetch_all(build)?,
                None => build.select(instruction, from.as_ref(), &patterns)?,
            };
            let visible = visible.excluding(exclude.as_ref());
            let root_fd = copy::open_root(root)?;
            // An archive ADD unpacks goes into the destination as a
            // directory, whatever else the step copies.
            let (archives, sources): (Vec<_>, Vec<_>) = sources
                .into_iter()
                .partition(|s| unpacks && !s.is_dir && copy::is_archive(&s.host));
            for archive in &archives {
                let dir = copy::make_dirs(
                    &root_fd,
                    &dest,
                    Owner {
                        mode: None,
                        ..owner
                    },
                )?;
                copy::unpack_archive(
                    &dir,
                    &archive.host,
                    &archive.path,
                    build.store,
                    build.cancel,
                )
                .map_err(|error| match error {
                    Error::Image(keel_image::Error::Cancelled { .. }) => Error::Cancelled,
                    // A bad archive is the Dockerfile's fault.
                    error if error.kind() == keel_errdefs::Kind::InvalidArgument => {
                        instruction.error(error.to_string())
                    }
                    error => error,
                })?;
            }
            if sources.is_empty() && !archives.is_empty() && heredoc_files.is_empty() {
                return Ok(());
            }
            let dir_owner = Owner {
                mode: None,
                ..owner
            };
            if parents {
                // Each source at its path below its pattern's pivot.
                for source in &sources {
                    let pivot = &pivots[source.pattern];
                    let kept = match pivot.is_empty() {
                        true => source.path.as_str(),
                        false => source
                            .path
                            .strip_prefix(pivot.as_str())
                            .map_or(source.path.as_str(), |rest| rest.trim_start_matches('/')),
                    };
                    let at = join_path(&dest, kept);
                    let visible = visible.of_source(&source.path);
                    if source.is_dir {
                        let target = copy::make_dirs(&root_fd, &at, dir_owner)?;
                        copy::copy_children(&target, source, owner, visible)?;
                    } else {
                        let (parent, name) = at.rsplit_once('/').unwrap_or(("", &at));
                        let dir = copy::make_dirs(&root_fd, parent, dir_owner)?;
                        copy::copy_into(
                            &dir,
                            name,
                            &source.host,
                            &source.path,
                            owner,
                            true,
                            visible,
                        )?;
                    }
                }
                let dir = copy::make_dirs(&root_fd, &dest, dir_owner)?;
                for (name, content) in &heredoc_files {
                    copy::write_file(&dir, name, content.as_bytes(), owner)?;
                }
                return Ok(());
            }
            let into_dir = dest_is_dir
                || copy::is_dir_in(&root_fd, &dest)
                || sources.iter().all(|s| s.is_dir) && !sources.is_empty();
            let (dir_path, file_name) = match into_dir {
                true => (dest.clone(), None),
                false => {
                    let (parent, name) = dest.rsplit_once('/').unwrap_or(("", &dest));
                    (parent.to_owned(), Some(name.to_owned()))
                }
            };
            let dir = copy::make_dirs(&root_fd, &dir_path, dir_owner)?;
            for source in &sources {
                if source.is_dir {
                    let target = copy::make_dirs(
                        &root_fd,
                        &join_path(&dir_path, file_name.as_deref().unwrap_or(".")),
                        dir_owner,
                    )?;
                    copy::copy_children(&target, source, owner, visible)?;
                } else {
                    let name = match &file_name {
                        Some(name) => name.clone(),
                        None => source
                            .path
                            .rsplit('/')
                            .next()
                            .unwrap_or(&source.path)
                            .to_owned(),
                    };
                    copy::copy_into(
                        &dir,
                        &name,
                        &source.host,
                        &source.path,
                        owner,
                        true,
                        visible.of_source(&source.path),
                    )?;
                }
            }
            for (name, content) in &heredoc_files {
                let file = file_name.clone().unwrap_or_else(|| name.clone());
                copy::write_file(&dir, &file, content.as_bytes(), owner)?;
            }
            Ok(())
        })
    }

    /// The files `name` (a `--from`) means: an earlier stage's or an
    /// image's layers, and the image they are of.
    fn files_of(
        &self,
        instruction: &Instruction,
        name: &str,
        stages: &[Stage],
        index: usize,
        built: &BTreeMap<usize, State>,
    ) -> Result<(Vec<LayerBlob>, Digest)> {
        Ok(match stage_index(stages, name, index) {
            Some(found) => {
                let stage = built.get(&found).ok_or_else(|| {
                    instruction.error(format!(
                        "--from={name}: that stage was not built (it is named through a variable the stage's own ARG sets; name it with a global ARG or directly)"
                    ))
                })?;
                (stage.layers.clone(), stage.base.clone())
            }
            None => {
                let id = self.store.resolve(name).map_err(|_| {
                    instruction.error(format!("--from={name}: no stage or image of that name"))
                })?;
                (self.store.image(&id)?.layers, id)
            }
        })
    }

    /// The checksum of what `patterns` select, in the context or in the
    /// files of `from`; with the selection, when it had to be made. A
    /// stage's files are fixed by its layers, so the checksum of what is
    /// selected from them is kept under the layers and the patterns: a
    /// cached `COPY --from` neither mounts nor reads them.
    fn selection_sum(
        &mut self,
        instruction: &Instruction,
        from: Option<&(Vec<LayerBlob>, Digest)>,
        patterns: &[String],
        exclude_patterns: &[String],
        exclude: Option<&crate::Ignore>,
    ) -> Result<(String, Vec<FileEntry>, Option<Selection<'a>>)> {
        let sum_key = from.map(|(layers, _)| {
            let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
            step_key(&json!({
                "files": chain_ids(&diff_ids).last(), "select": patterns, "exclude": exclude_patterns,
            }))
        });
        if let Some(key) = &sum_key
            && let Some(sum) = self.store.cached_sum(key)?
        {
            return Ok((sum, Vec::new(), None));
        }
        let selection = self.select(instruction, from, patterns)?;
        let (sum, files) = copy::checksum(&selection.1, selection.2.excluding(exclude), self.sums)?;
        if let Some(key) = &sum_key {
            self.store.cache_sum(key, &sum)?;
        }
        Ok((sum, files, Some(selection)))
    }

    /// The sources `patterns` name: in the context, or in the files of
    /// `from` (layers, and the image they are of), mounted for as long
    /// as the returned root lives.
    fn select(
        &mut self,
        instruction: &Instruction,
        from: Option<&(Vec<LayerBlob>, Digest)>,
        patterns: &[String],
    ) -> Result<Selection<'a>> {
        let root = match from {
            None => None,
            Some((layers, base)) => {
                let id = self.next_snapshot();
                let snapshot = self.store.create_step_snapshot(&id, base, layers)?;
                // Made first, so that a failed mount is removed too.
                let mut mounted = StageRoot {
                    store: self.store,
                    id,
                    root: PathBuf::new(),
                };
                mounted.root = self.store.mount_snapshot(&snapshot)?;
                Some(mounted)
            }
        };
        let (source_root, visible) = match &root {
            Some(root) => (root.root.as_path(), Visible::default()),
            None => (
                self.context.dir.as_path(),
                Visible::ignoring(self.context.ignore.as_ref()),
            ),
        };
        let what = instruction.keyword.clone() + " failed";
        let mut sources = Vec::new();
        for (index, pattern) in patterns.iter().enumerate() {
            sources.extend(
                copy::sources(source_root, pattern, &what, visible)
                    .map_err(|e| instruction.error(e.to_string()))?
                    .into_iter()
                    .map(|mut source| {
                        source.pattern = index;
                        source
                    }),
            );
        }
        Ok((root, sources, visible))
    }

    /// `--chown` and `--chmod` of a COPY: numbers, or names looked up in
    /// the stage's /etc/passwd and /etc/group.
    fn owner(&self, state: &State, instruction: &Instruction, vars: &Vars) -> Result<Owner> {
        let mut owner = Owner::default();
        if let Some(mode) = instruction.flag("chmod") {
            owner.mode = Some(u32::from_str_radix(mode, 8).map_err(|_| {
                instruction.error(format!(
                    "invalid --chmod={mode}: use an octal mode such as 0755"
                ))
            })?);
        }
        if let Some(chown) = instruction.flag("chown") {
            let chown = instruction.word(chown, vars, self.escape)?;
            let (user, group) = chown.split_once(':').unwrap_or((&chown, &chown));
            let lookup = |value: &str, file: &str| -> Result<u32> {
                if let Ok(number) = value.parse() {
                    return Ok(number);
                }
                self.lookup_name(state, file, value).ok_or_else(|| {
                    instruction.error(format!(
                        "unable to convert {value:?} to an id: no such name in /etc/{file} of the image"
                    ))
                })
            };
            owner.uid = lookup(user, "passwd")?;
            owner.gid = match chown.contains(':') {
                true => lookup(group, "group")?,
                false if user.parse::<u32>().is_ok() => owner.uid,
                false => self.primary_group(state, user).unwrap_or(owner.uid),
            };
        }
        Ok(owner)
    }

    /// Reads `/etc/{file}` of the stage's top layers (the first that has it).
    fn etc_file(&self, state: &State, file: &str) -> Option<String> {
        let diff_ids: Vec<Digest> = state.layers.iter().map(|l| l.diff_id.clone()).collect();
        let chain = keel_image::digest::chain_ids(&diff_ids);
        chain.iter().rev().find_map(|chain_id| {
            let dir = self.store.layers().diff_dir(chain_id);
            let root = File::open(dir).ok()?;
            let fd = rustix::fs::openat2(
                &root,
                format!("etc/{file}"),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
                rustix::fs::ResolveFlags::IN_ROOT,
            )
            .ok()?;
            std::io::read_to_string(File::from(fd)).ok()
        })
    }

    fn lookup_name(&self, state: &State, file: &str, name: &str) -> Option<u32> {
        self.etc_file(state, file)?.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&name)).then(|| fields.get(2)?.parse().ok())?
        })
    }

    fn primary_group(&self, state: &State, user: &str) -> Option<u32> {
        self.etc_file(state, "passwd")?.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&user)).then(|| fields.get(3)?.parse().ok())?
        })
    }
}
