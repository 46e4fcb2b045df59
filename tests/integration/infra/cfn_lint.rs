//! The pinned cfn-lint (`tests/tools/cfn-lint.txt`, installed by `tests/tools/install`).

use std::path::PathBuf;
use std::process::Command;

/// The version `tests/tools/cfn-lint.txt` pins.
pub fn version() -> &'static str {
    include_str!("../../tools/cfn-lint.txt")
        .trim()
        .strip_prefix("cfn-lint==")
        .expect("tests/tools/cfn-lint.txt pins cfn-lint==<version>")
}

/// Runs cfn-lint on the files; returns its exit code and combined output.
pub fn run(files: &[PathBuf]) -> (i32, String) {
    let python = crate::venv::tool_python(
        "cfn-lint",
        &format!(
            "import sys, cfnlint.version; sys.exit(cfnlint.version.__version__ != '{}')",
            version()
        ),
    );
    let out = Command::new(&python)
        .args(["-c", "import sys; from cfnlint.runner import main; sys.argv[0] = 'cfn-lint'; sys.exit(main())"])
        .args(files)
        .output()
        .expect("run cfn-lint");
    (out.status.code().unwrap_or(-1), crate::venv::text(&out))
}
