//! The AWS templates in `infra/` held against the code and against the rules cfn-lint does not
//! know: Glue tables are the lake's Delta tables, the runs table equals the run manifest, IAM is
//! least privilege, buckets are private and TLS-only, Fargate sizes and API methods are valid,
//! cfn-lint passes, and `deploy.sh --dry-run` lists its steps without calling AWS.

mod catalog;
mod cfn_lint;
mod compute;
mod deploy;
mod emulator;
mod hive;
mod security;
mod template;

use template::Template;

/// Every template, in deployment order (deploy.sh deploys one stack per template).
const TEMPLATES: [&str; 5] = [
    "storage.yaml",
    "catalog.yaml",
    "batch.yaml",
    "dispatch.yaml",
    "api.yaml",
];

/// How every template refers to the lake bucket: the storage stack's export.
const LAKE: &str = "import({StackPrefix}-LakeBucket)";

#[test]
fn cfn_lint_passes_on_every_template() {
    let files: Vec<_> = TEMPLATES
        .iter()
        .map(|f| template::templates_dir().join(f))
        .collect();
    let on_disk = Template::all().len();
    assert_eq!(
        on_disk,
        TEMPLATES.len(),
        "a template in infra/templates is not in TEMPLATES"
    );
    let (code, output) = cfn_lint::run(&files);
    // Exit code bits: 2 errors, 4 warnings, 8 informational.
    assert!(
        code & !8 == 0,
        "cfn-lint {} found problems (exit {code}):\n{output}",
        cfn_lint::version()
    );
}
