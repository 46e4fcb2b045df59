//! Pinned Python tools in virtualenvs under the cargo target dir, installed from PyPI on first
//! use (CI machines are fresh). Never skipped: if a tool cannot be installed, the test fails and
//! says why.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The python of a virtualenv holding `requirements` (pinned `name==version` lines), installing
/// them first if `probe` (Python code that exits 0 when the install is usable) fails. The venv
/// is built under a temporary name and renamed into place, so concurrent test runs never see
/// half an install.
pub fn python_with(name: &str, requirements: &[&str], probe: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = base.join(format!(
        "venv-{name}-{}",
        requirements.join("-").replace("==", "")
    ));
    let python = venv.join("bin/python");
    if probe_passes(&python, probe) {
        return python;
    }
    let staging = venv.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(base).unwrap();
    let system_python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or_else(|| panic!("{name}: no python3 on PATH to create a virtualenv"));
    must(
        name,
        Command::new(system_python)
            .args(["-m", "venv"])
            .arg(&staging),
        "create a virtualenv (is the python3 venv module installed? Debian: apt-get install python3-venv)",
    );
    must(
        name,
        Command::new(staging.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(requirements),
        &format!("pip install {} from PyPI", requirements.join(" ")),
    );
    if std::fs::rename(&staging, &venv).is_err() {
        // Another run got there first; use its install.
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(
        probe_passes(&python, probe),
        "{name}: {} is not usable in {} after installing it",
        requirements.join(" "),
        venv.display()
    );
    python
}

fn probe_passes(python: &Path, probe: &str) -> bool {
    python.exists()
        && Command::new(python)
            .args(["-c", probe])
            .output()
            .is_ok_and(|o| o.status.success())
}

fn must(name: &str, cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{name}: cannot {what}: {e}"));
    assert!(
        out.status.success(),
        "{name}: cannot {what} ({}):\n{}",
        out.status,
        text(&out)
    );
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
