//! Loading whole projects from files on disk, as compose v2 loads them.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use keel_compose::{Condition, Error, Options, VolumeType, load};

fn options(dir: &Path) -> Options {
    Options {
        current_dir: dir.to_owned(),
        environment: BTreeMap::from([("FROM_SHELL".to_owned(), "shell".to_owned())]),
        ..Options::default()
    }
}

fn project_dir(name: &str, compose: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(name);
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("compose.yaml"), compose).unwrap();
    root
}

#[test]
fn a_project_is_named_after_its_directory_and_resolved_with_its_env_files() {
    let root = project_dir(
        "My.App",
        "services:\n  web:\n    image: busybox:${TAG:-latest}\n    command: sh -c 'echo \"$$GREETING\"'\n    env_file: web.env\n    environment:\n      - GREETING=${GREETING}\n      - FROM_SHELL\n    volumes: [\"data:/data\", \"./site:/www:ro\"]\n    depends_on:\n      db:\n        condition: service_healthy\n    ports: [\"8080:80\"]\n  db:\n    image: busybox\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 1s\n  tools:\n    image: busybox\n    profiles: [debug]\nvolumes:\n  data:\n  unused:\n",
    );
    let dir = root.path().join("My.App");
    fs::write(dir.join(".env"), "TAG=1.36\nGREETING=hello\n").unwrap();
    fs::write(dir.join("web.env"), "MODE=prod\nGREETING=overridden\n").unwrap();
    let project = load(&options(&dir)).unwrap();
    assert_eq!(project.name, "myapp");
    assert_eq!(project.config_files, [dir.join("compose.yaml")]);
    let web = &project.services["web"];
    assert_eq!(web.image, "busybox:1.36");
    assert_eq!(
        web.command.as_deref().unwrap(),
        ["sh", "-c", "echo \"$GREETING\""]
    );
    assert_eq!(web.environment["GREETING"].as_deref(), Some("hello"));
    assert_eq!(web.environment["MODE"].as_deref(), Some("prod"));
    assert_eq!(web.environment["FROM_SHELL"].as_deref(), Some("shell"));
    assert_eq!(web.depends_on["db"].condition, Condition::ServiceHealthy);
    assert_eq!(web.volumes[1].kind, VolumeType::Bind);
    assert_eq!(
        web.volumes[1].source.as_deref(),
        Some(dir.join("site").to_str().unwrap())
    );
    assert!(
        !project.services.contains_key("tools"),
        "its profile is off"
    );
    assert_eq!(project.networks["default"].name, "myapp_default");
    assert_eq!(
        project.volumes.keys().collect::<Vec<_>>(),
        ["data"],
        "unused volumes are left out"
    );
    assert_eq!(project.volumes["data"].name, "myapp_data");
    assert_eq!(project.dependency_order(), ["db", "web"]);

    let mut with_profile = options(&dir);
    with_profile.profiles = vec!["debug".to_owned()];
    with_profile.project_name = Some("other".to_owned());
    let project = load(&with_profile).unwrap();
    assert!(project.services.contains_key("tools"));
    assert_eq!(project.name, "other");
}

#[test]
fn the_config_hash_changes_with_the_containers_configuration_only() {
    let root = project_dir(
        "p",
        "services:\n  web:\n    image: busybox\n    command: [sleep, \"1\"]\n",
    );
    let dir = root.path().join("p");
    let hash = || load(&options(&dir)).unwrap().services["web"].config_hash();
    let first = hash();
    assert_eq!(first.len(), 64);
    assert_eq!(hash(), first, "the same file hashes the same");
    fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n    command: [sleep, \"1\"]\n    deploy:\n      replicas: 2\n",
    )
    .unwrap();
    assert_eq!(hash(), first, "the replica count is not the containers'");
    fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n    command: [sleep, \"2\"]\n",
    )
    .unwrap();
    assert_ne!(hash(), first);
}

#[test]
fn bad_references_are_refused_naming_them() {
    let error = |compose: &str| {
        let root = project_dir("p", compose);
        load(&options(&root.path().join("p")))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error("services:\n  web:\n    image: a\n    depends_on: [nope]\n"),
        "service \"web\" depends on undefined service \"nope\": invalid compose project"
    );
    assert_eq!(
        error("services:\n  web:\n    image: a\n    networks: [back]\n"),
        "service \"web\" refers to undefined network back: invalid compose project"
    );
    assert_eq!(
        error("services:\n  web:\n    image: a\n    volumes: [\"data:/d\"]\n"),
        "service \"web\" refers to undefined volume data: invalid compose project"
    );
    assert_eq!(
        error(
            "services:\n  a:\n    image: a\n    depends_on: [b]\n  b:\n    image: b\n    depends_on: [a]\n"
        ),
        "dependency cycle detected: a -> b -> a: invalid compose project"
    );
    assert_eq!(
        error("services:\n  web:\n    command: [true]\n"),
        "service \"web\" has neither an image nor a build context specified: invalid compose project"
    );
    assert!(
        error("services:\n  web:\n    image: a\n    stop_grace_period: 5 sec\n")
            .starts_with("services.web.stop_grace_period: \"5 sec\" is not a duration"),
    );
    assert!(
        error("services:\n  web:\n    image: a\n    restart: sometimes\n")
            .contains("invalid restart policy \"sometimes\""),
    );
    let root = project_dir("p", "services:\n  web:\n    image: a\n");
    let mut bad_name = options(&root.path().join("p"));
    bad_name.project_name = Some("Bad!".to_owned());
    assert!(matches!(load(&bad_name), Err(Error::ProjectName(_))));
}

#[test]
fn files_are_found_above_the_current_directory_with_their_override() {
    let root = project_dir("p", "services:\n  web:\n    image: a\n");
    let dir = root.path().join("p");
    fs::write(
        dir.join("compose.override.yaml"),
        "services:\n  web:\n    image: b\n",
    )
    .unwrap();
    let below = dir.join("src/deep");
    fs::create_dir_all(&below).unwrap();
    let project = load(&options(&below)).unwrap();
    assert_eq!(project.name, "p");
    assert_eq!(project.services["web"].image, "b");
    assert_eq!(project.working_dir, dir);
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(load(&options(empty.path())), Err(Error::NoFile)));
}
