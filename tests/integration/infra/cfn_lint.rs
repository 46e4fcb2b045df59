//! A pinned cfn-lint in a virtualenv under the cargo target dir (see [`crate::venv`]).

use std::path::PathBuf;
use std::process::Command;

pub const CFN_LINT_VERSION: &str = "1.58.0";

/// Runs cfn-lint on the files; returns its exit code and combined output.
pub fn run(files: &[PathBuf]) -> (i32, String) {
    let python = crate::venv::python_with(
        "cfn-lint",
        &[&format!("cfn-lint=={CFN_LINT_VERSION}")],
        &format!(
            "import sys, cfnlint.version; sys.exit(cfnlint.version.__version__ != '{CFN_LINT_VERSION}')"
        ),
    );
    let out = Command::new(&python)
        .args(["-c", "import sys; from cfnlint.runner import main; sys.argv[0] = 'cfn-lint'; sys.exit(main())"])
        .args(files)
        .output()
        .expect("run cfn-lint");
    (out.status.code().unwrap_or(-1), crate::venv::text(&out))
}
