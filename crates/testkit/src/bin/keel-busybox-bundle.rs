//! keel-busybox-bundle DIR [COMMAND...]: writes an OCI bundle in DIR whose
//! rootfs is Debian's busybox-static and whose process is COMMAND (default
//! `sh`), for trying keel-runtime (or runc, crun) without any image.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: keel-busybox-bundle DIR [COMMAND...]");
        return ExitCode::from(2);
    };
    let command: Vec<String> = args.collect();
    let command: Vec<&str> = if command.is_empty() {
        vec!["sh"]
    } else {
        command.iter().map(String::as_str).collect()
    };
    let name = dir
        .file_name()
        .map_or("keel".into(), |n| n.to_string_lossy().into_owned());
    match keel_testkit::write_busybox_bundle(&dir, &name, &command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "keel-busybox-bundle: cannot write the bundle in {}: {e}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}
