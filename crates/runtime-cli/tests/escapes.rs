//! Escapes found against other runtimes, attempted against keel-runtime:
//! each test is the attack, and fails if the attack works.

mod common;

use std::path::Path;

use common::{Bundle, Runtime, unique_name};
use keel_testkit::escape::{
    CORE_PATTERN, CorePattern, HostUser, MASK_PROBE, SelfExeAttack, attack_result, binaries_copied,
    file_digest,
};

/// A copy of keel-runtime (the one the attack may overwrite), a runtime
/// that runs it, and a bundle planted with the attack running `args`.
fn attacked(
    args: &[&str],
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Runtime,
    Bundle,
    String,
) {
    let (dir, binary) = binaries_copied(Path::new(env!("CARGO_BIN_EXE_keel-runtime")), &[]);
    let runtime = Runtime::of_binary(&binary);
    let id = unique_name("selfexe");
    let mut bundle = Bundle::busybox(&id, args);
    // The attacker writes its result into the container's root.
    bundle.edit(|spec| {
        spec.root_mut().as_mut().unwrap().set_readonly(Some(false));
    });
    SelfExeAttack::build().plant(&bundle.rootfs(), &[&binary]);
    (dir, binary, runtime, bundle, id)
}

/// Fails the test unless the attack planted in `bundle` was refused and
/// `binary` still has the digest it had `before`.
fn assert_refused(bundle: &Bundle, binary: &Path, before: &str) {
    let result = attack_result(&bundle.rootfs().join("attack"));
    assert!(result.starts_with("refused "), "the attack: {result}");
    assert_eq!(
        file_digest(binary).unwrap(),
        before,
        "keel-runtime was written"
    );
}

#[test]
fn a_container_whose_sh_is_proc_self_exe_cannot_write_over_keel_runtime_through_its_init() {
    let (_dir, binary, runtime, bundle, id) = attacked(&["/bin/sh"]);
    let before = file_digest(&binary).unwrap();
    // As conmon and containerd's shim drive it: create, then start, and
    // no keel-runtime process is left running once start returns.
    let container = runtime.create(&bundle, &id);
    container.start();
    assert_refused(&bundle, &binary, &before);
}

#[test]
fn a_container_whose_sh_is_proc_self_exe_cannot_write_over_keel_runtime_through_exec() {
    let (_dir, binary, runtime, bundle, id) = attacked(&["sleep", "100"]);
    let before = file_digest(&binary).unwrap();
    let container = runtime.create(&bundle, &id);
    container.start();
    container.exec(&["/bin/sh"]);
    assert_refused(&bundle, &binary, &before);
}

#[test]
fn a_bind_at_dev_cannot_make_the_masks_of_proc_bind_host_files() {
    let original = CorePattern::save();
    let id = unique_name("fakedev");
    let mut bundle = Bundle::busybox(&id, &["sh", "-c", MASK_PROBE]);
    // A /dev whose null is a symlink to a host file of /proc, as a volume
    // a container filled can be.
    let fake_dev = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(CORE_PATTERN, fake_dev.path().join("null")).unwrap();
    bundle.edit(|spec| {
        let mut mounts = spec.mounts().clone().unwrap();
        mounts.retain(|m| m.destination() != Path::new("/dev"));
        mounts.push(common::bind_mount(
            fake_dev.path(),
            "/dev",
            &["rbind", "rw"],
        ));
        spec.set_mounts(Some(mounts));
    });
    original.assert_masks_held(&Runtime::new().run(&bundle, &id));
}

#[test]
fn a_host_user_reads_no_containers_state_or_config() {
    let runtime = Runtime::making_its_root();
    let id = unique_name("private");
    let bundle = Bundle::busybox(&id, &["sleep", "100"]);
    let _container = runtime.create(&bundle, &id);
    let state = runtime.root().join(&id).join("state.json");
    assert!(state.exists(), "no {}", state.display());
    let user = HostUser::add();
    let (code, out, err) = user.run(Path::new("/bin/cat"), &[state.to_str().unwrap()]);
    assert!(
        code != 0 && err.contains("Permission denied"),
        "{}: {code} {out} {err}",
        state.display()
    );
}
