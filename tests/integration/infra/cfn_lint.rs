//! A pinned cfn-lint in a virtualenv under the cargo target dir, installed from PyPI on first use
//! (CI machines are fresh). Never skipped: if it cannot be installed, the test fails and says why.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const CFN_LINT_VERSION: &str = "1.58.0";

/// Runs cfn-lint on the files; returns its exit code and combined output.
pub fn run(files: &[PathBuf]) -> (i32, String) {
    let python = ensure_installed();
    let out = Command::new(&python)
        .args(["-c", "import sys; from cfnlint.runner import main; sys.argv[0] = 'cfn-lint'; sys.exit(main())"])
        .args(files)
        .output()
        .expect("run cfn-lint");
    (out.status.code().unwrap_or(-1), text(&out))
}

/// The virtualenv's python, installing cfn-lint first if needed. The venv is built under a
/// temporary name and renamed into place, so concurrent test runs never see half an install.
fn ensure_installed() -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = base.join(format!("cfn-lint-{CFN_LINT_VERSION}"));
    let python = venv.join("bin/python");
    if has_cfn_lint(&python) {
        return python;
    }
    let staging = base.join(format!(
        "cfn-lint-{CFN_LINT_VERSION}.partial-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(base).unwrap();
    let system_python = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
        .unwrap_or_else(|| panic!("cfn-lint check: no python3 on PATH to create a virtualenv for cfn-lint {CFN_LINT_VERSION}"));
    must(
        Command::new(system_python)
            .args(["-m", "venv"])
            .arg(&staging),
        "create a virtualenv (is the python3 venv module installed? Debian: apt-get install python3-venv)",
    );
    must(
        Command::new(staging.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .arg(format!("cfn-lint=={CFN_LINT_VERSION}")),
        "pip install cfn-lint from PyPI",
    );
    if std::fs::rename(&staging, &venv).is_err() {
        // Another run got there first; use its install.
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(
        has_cfn_lint(&python),
        "cfn-lint {CFN_LINT_VERSION} is not usable in {} after installing it",
        venv.display()
    );
    python
}

fn has_cfn_lint(python: &Path) -> bool {
    python.exists()
        && Command::new(python)
            .args([
                "-c",
                "import cfnlint.version; print(cfnlint.version.__version__)",
            ])
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == CFN_LINT_VERSION
            })
}

fn must(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cfn-lint check: cannot {what}: {e}"));
    assert!(
        out.status.success(),
        "cfn-lint check: cannot {what} ({}):\n{}",
        out.status,
        text(&out)
    );
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
