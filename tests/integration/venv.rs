//! Pinned Python tools the tests run, each in a virtualenv under the cargo target dir
//! (`target/tmp/venv-<name>`) that `tests/tools/install` creates from `tests/tools/<name>.txt`.
//! The tests install nothing: a missing or outdated tool fails the test with the command that
//! installs it (`.ci/run` runs it first).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The python of the `name` tool's virtualenv, after checking that it holds exactly the
/// requirements pinned in `tests/tools/<name>.txt` and that `probe` (Python code that exits 0
/// when the tool is usable) passes.
pub fn tool_python(name: &str, probe: &str) -> PathBuf {
    let pins = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/tools/{name}.txt"));
    let wanted = std::fs::read_to_string(&pins)
        .unwrap_or_else(|e| panic!("{name}: no pinned requirements at {}: {e}", pins.display()));
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("venv-{name}"));
    let python = venv.join("bin/python");
    let installed = std::fs::read_to_string(venv.join("requirements.txt")).unwrap_or_default();
    assert!(
        installed == wanted && probe_passes(&python, probe),
        "{name}: the tests need {} in {}, which is missing or outdated: run `tests/tools/install` \
         (it installs the tests' tools from PyPI and apt-get)",
        wanted.split_whitespace().collect::<Vec<_>>().join(" "),
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

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
