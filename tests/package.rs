//! `cargo deb` (cargo-deb) builds a Debian package an administrator can install: the binary where
//! the unit starts it, the unit, the configuration and the templates as conffiles (an upgrade
//! never overwrites the business's edits), and the README where the unit's `Documentation=`
//! points. The package is built from the binary these tests run, with `dpkg-deb` reading it back.

use std::path::Path;
use std::process::Command;

/// Runs `program args`, returning stdout, or why it failed.
fn run(program: &str, args: &[&str], dir: &Path, env: &[(&str, &Path)]) -> Result<String, String> {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn the_debian_package_holds_the_binary_the_unit_the_conffiles_and_the_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if run("cargo", &["deb", "--version"], root, &[]).is_err() {
        let how = "cargo-deb is missing: install it with `cargo install cargo-deb --locked` (.ci/run does)";
        assert!(std::env::var_os("CI").is_none(), "{how}");
        eprintln!("skipped: {how}");
        return;
    }
    // The package takes the binary from target/release: a target directory of its own whose
    // release binary is the one these tests run, so nothing is built again.
    let target = tempfile::tempdir().expect("target dir");
    std::fs::create_dir_all(target.path().join("release")).expect("release dir");
    std::fs::copy(
        env!("CARGO_BIN_EXE_rekindle"),
        target.path().join("release/rekindle"),
    )
    .expect("copy the binary");
    let out = tempfile::tempdir().expect("out dir");
    let env = [("CARGO_TARGET_DIR", target.path())];
    let written = run(
        "cargo",
        &[
            "deb",
            "--no-build",
            "--no-strip",
            "--fast",
            "--output",
            out.path().to_str().expect("path"),
        ],
        root,
        &env,
    )
    .expect("cargo deb");
    // cargo-deb prints the path of the package it wrote.
    let deb = written
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".deb"))
        .map(|l| l.trim().to_string())
        .expect("the package's path");
    let deb = deb.as_str();

    let files = run("dpkg-deb", &["--contents", deb], root, &[]).expect("contents");
    let listed = |path: &str| files.lines().any(|l| l.ends_with(path));
    for path in [
        "./usr/bin/rekindle",
        "./usr/lib/systemd/system/rekindle.service",
        "./etc/rekindle/rekindle.toml",
        "./etc/rekindle/templates/unhappy.j2",
        "./etc/rekindle/templates/digest.j2",
        "./usr/share/doc/rekindle/README.md",
        "./usr/share/doc/rekindle/copyright",
        "./usr/share/doc/rekindle/examples/several-tables.sql",
    ] {
        assert!(listed(path), "{path} is not in the package:\n{files}");
    }
    let templates = std::fs::read_dir(root.join("templates"))
        .expect("templates")
        .count();
    let packaged = files
        .lines()
        .filter(|l| l.contains("./etc/rekindle/templates/") && l.ends_with(".j2"))
        .count();
    assert_eq!(packaged, templates, "every template is packaged:\n{files}");

    let conffiles = run("dpkg-deb", &["--info", deb, "conffiles"], root, &[]).expect("conffiles");
    assert!(
        conffiles
            .lines()
            .any(|l| l == "/etc/rekindle/rekindle.toml"),
        "{conffiles}"
    );
    assert_eq!(
        conffiles
            .lines()
            .filter(|l| l.starts_with("/etc/rekindle/templates/"))
            .count(),
        templates,
        "{conffiles}"
    );

    // The unit starts the binary where the package puts it, and points at the README it ships.
    let unit = std::fs::read_to_string(root.join("systemd/rekindle.service")).expect("unit");
    assert!(unit.contains("ExecStart=/usr/bin/rekindle "), "{unit}");
    assert!(
        unit.contains("Documentation=file:///usr/share/doc/rekindle/README.md"),
        "{unit}"
    );
    let control = run(
        "dpkg-deb",
        &["--field", deb, "Package", "Depends"],
        root,
        &[],
    )
    .expect("control");
    assert!(control.contains("Package: rekindle"), "{control}");
    // rustls and bundled SQLite: nothing beyond the C library.
    assert!(!control.contains("libssl"), "{control}");
    assert!(!control.contains("libsqlite3"), "{control}");
}
