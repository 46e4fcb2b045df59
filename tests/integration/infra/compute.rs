//! Batch on Fargate, the Lambdas, their queue and schedule, API Gateway: the contracts with the
//! code and the validity rules cfn-lint does not check.

use serde_json::Value;

use super::LAKE;
use super::template::{Template, one_or_many, render, scalar};

/// Fargate's valid vCPU / memory (MiB) pairs.
const FARGATE_SIZES: [(&str, &[u32]); 7] = [
    ("0.25", &[512, 1024, 2048]),
    ("0.5", &[1024, 2048, 3072, 4096]),
    ("1", &[2048, 3072, 4096, 5120, 6144, 7168, 8192]),
    (
        "2",
        &[
            4096, 5120, 6144, 7168, 8192, 9216, 10240, 11264, 12288, 13312, 14336, 15360, 16384,
        ],
    ),
    (
        "4",
        &[
            8192, 9216, 10240, 11264, 12288, 13312, 14336, 15360, 16384, 17408, 18432, 19456,
            20480, 21504, 22528, 23552, 24576, 25600, 26624, 27648, 28672, 29696, 30720,
        ],
    ),
    (
        "8",
        &[
            16384, 20480, 24576, 28672, 32768, 36864, 40960, 45056, 49152, 53248, 57344, 61440,
        ],
    ),
    (
        "16",
        &[
            32768, 40960, 49152, 57344, 65536, 73728, 81920, 90112, 98304, 106496, 114688, 122880,
        ],
    ),
];

#[test]
fn batch_runs_on_fargate_with_a_valid_size_and_retries_only_retryable_exits() {
    let batch = Template::load("batch.yaml");
    let jd = batch.resource("JobDefinition");
    let cp = &jd["ContainerProperties"];

    // The defaults are a valid pair, and the template's Rules allow exactly the valid pairs.
    let (vcpu, mem) = (
        batch.default_of("JobVcpu"),
        batch.default_of("JobMemoryMiB"),
    );
    let valid = |v: &str, m: &str| {
        FARGATE_SIZES
            .iter()
            .any(|(c, ms)| *c == v && ms.iter().any(|x| x.to_string() == m))
    };
    assert!(
        valid(&vcpu, &mem),
        "default JobVcpu {vcpu} / JobMemoryMiB {mem} is not a Fargate pair"
    );
    let allowed: Vec<String> = one_or_many(&batch.parameter("JobVcpu")["AllowedValues"])
        .into_iter()
        .map(render)
        .collect();
    assert_eq!(
        allowed,
        FARGATE_SIZES
            .iter()
            .map(|(c, _)| c.to_string())
            .collect::<Vec<_>>()
    );
    let rules = batch.root["Rules"]
        .as_object()
        .expect("batch.yaml has Rules");
    for (cpu, mems) in FARGATE_SIZES {
        let rule = rules
            .values()
            .find(|r| r["RuleCondition"]["Fn::Equals"][1] == cpu)
            .unwrap_or_else(|| panic!("no Rule for JobVcpu {cpu}"));
        let listed: Vec<String> = one_or_many(&rule["Assertions"][0]["Assert"]["Fn::Contains"][0])
            .into_iter()
            .map(render)
            .collect();
        assert_eq!(
            listed,
            mems.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            "Rule for {cpu} vCPU"
        );
        assert_eq!(
            render(&rule["Assertions"][0]["Assert"]["Fn::Contains"][1]),
            "{JobMemoryMiB}"
        );
    }
    let requirement = |ty: &str| {
        one_or_many(&cp["ResourceRequirements"])
            .into_iter()
            .find(|r| r["Type"] == ty)
            .map(|r| render(&r["Value"]))
    };
    assert_eq!(requirement("VCPU").as_deref(), Some("{JobVcpu}"));
    assert_eq!(requirement("MEMORY").as_deref(), Some("{JobMemoryMiB}"));

    assert_eq!(jd["PlatformCapabilities"], serde_json::json!(["FARGATE"]));
    assert_eq!(
        cp["RuntimePlatform"],
        serde_json::json!({"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"})
    );
    let command: Vec<String> = one_or_many(&cp["Command"])
        .into_iter()
        .map(render)
        .collect();
    assert_eq!(
        command,
        [
            "job",
            "--bucket",
            "Ref::bucket",
            "--key",
            "Ref::key",
            "--etag",
            "Ref::etag",
            "--pa-date",
            "Ref::pa_date"
        ]
    );
    assert_eq!(
        jd["Parameters"],
        serde_json::json!({"etag": "", "pa_date": ""})
    );
    assert!(
        !jd["Timeout"]["AttemptDurationSeconds"].is_null(),
        "job timeout"
    );
    assert_eq!(cp["LogConfiguration"]["LogDriver"], "awslogs");
    assert!(!cp["JobRoleArn"].is_null() && !cp["ExecutionRoleArn"].is_null());
    let env: Vec<String> = one_or_many(&cp["Environment"])
        .into_iter()
        .map(|e| render(&e["Name"]))
        .collect();
    assert_eq!(
        env,
        [
            "DUFF_LAKE",
            "DUFF_LOG_FORMAT",
            "AWS_REGION",
            "DUFF_JOB_VCPUS",
            "DUFF_JOB_MEMORY_MIB"
        ]
    );

    // Retry: exit 75 and a reclaimed host are retried; everything else (0, 2, 3, ...) is final.
    let retry = &jd["RetryStrategy"];
    assert_eq!(retry["Attempts"], 3);
    let rules: Vec<(String, String)> = one_or_many(&retry["EvaluateOnExit"])
        .into_iter()
        .map(|e| {
            let on = ["OnExitCode", "OnStatusReason", "OnReason"]
                .iter()
                .filter_map(|k| scalar(&e[*k]).map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(" ");
            (on, render(&e["Action"]))
        })
        .collect();
    assert_eq!(
        rules.first(),
        Some(&("OnExitCode=75".into(), "RETRY".into())),
        "{rules:?}"
    );
    assert!(
        rules.contains(&("OnStatusReason=Host EC2*".into(), "RETRY".into())),
        "{rules:?}"
    );
    assert_eq!(
        rules.last(),
        Some(&("OnReason=*".into(), "EXIT".into())),
        "{rules:?}"
    );
    assert!(
        rules.iter().all(|(on, action)| action == "EXIT"
            || on == "OnExitCode=75"
            || on.starts_with("OnStatusReason=")),
        "{rules:?}"
    );

    // Spot first, on-demand as the fallback.
    let ce_type = |id: &str| render(&batch.resource(id)["ComputeResources"]["Type"]);
    let order: Vec<String> = one_or_many(&batch.resource("JobQueue")["ComputeEnvironmentOrder"])
        .into_iter()
        .map(|o| ce_type(render(&o["ComputeEnvironment"]).trim_matches(['{', '}'])))
        .collect();
    assert_eq!(order, ["FARGATE_SPOT", "FARGATE"]);
}

#[test]
fn lambdas_are_arm64_al2023_with_the_contracted_environment_and_queue_settings() {
    let dispatch = Template::load("dispatch.yaml");
    let api = Template::load("api.yaml");
    let env_keys = |t: &Template, id: &str| -> Vec<String> {
        let f = t.resource(id);
        assert_eq!(f["Runtime"], "provided.al2023", "{id}");
        assert_eq!(f["Architectures"], serde_json::json!(["arm64"]), "{id}");
        let mut keys: Vec<String> = f["Environment"]["Variables"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        env_keys(&dispatch, "DispatcherFunction"),
        [
            "DUFF_BATCH_JOB_DEFINITION",
            "DUFF_BATCH_JOB_MEMORY_MIB",
            "DUFF_BATCH_JOB_QUEUE",
            "DUFF_BATCH_JOB_VCPUS",
            "DUFF_INBOX_PREFIX",
            "DUFF_LAKE",
            "DUFF_LOG_FORMAT",
            "DUFF_SIZE_THRESHOLD_BYTES"
        ]
    );
    assert_eq!(
        env_keys(&api, "ApiFunction"),
        [
            "DUFF_API_BACKEND",
            "DUFF_ATHENA_DATABASE",
            "DUFF_ATHENA_WORKGROUP",
            "DUFF_LAKE",
            "DUFF_LOG_FORMAT"
        ]
    );
    // Athena unless the stack asks for the lake directly, which the role may already read.
    let api_env = &api.resource("ApiFunction")["Environment"]["Variables"];
    assert_eq!(
        api_env["DUFF_API_BACKEND"],
        serde_json::json!({"Fn::If": ["ReadsLake", "lake", "athena"]})
    );
    assert_eq!(render(&api_env["DUFF_LAKE"]), format!("s3://{LAKE}/"));
    let backend = api.parameter("ApiBackend");
    assert_eq!(backend["Default"], "Athena");
    assert_eq!(
        backend["AllowedValues"],
        serde_json::json!(["Athena", "Lake"])
    );
    // The API's Lambdas are capped: each runs one Athena query at a time, so the cap bounds
    // the API's share of the account's Athena query quota (their sum fails past it).
    assert_eq!(
        render(&api.resource("ApiFunction")["ReservedConcurrentExecutions"]),
        "{ApiReservedConcurrency}"
    );
    let cap = api.parameter("ApiReservedConcurrency");
    assert!(
        (1..=20).contains(&cap["Default"].as_u64().unwrap()),
        "a default that fits the smallest quotas: {cap}"
    );
    assert_eq!(
        render(&dispatch.resource("DispatcherFunction")["Environment"]["Variables"]["DUFF_LAKE"]),
        format!("s3://{LAKE}/")
    );

    // Visibility timeout >= 6x the function timeout, for every allowed timeout.
    let map = dispatch.root["Mappings"]["VisibilityTimeout"]
        .as_object()
        .unwrap();
    for timeout in one_or_many(&dispatch.parameter("DispatcherTimeoutSeconds")["AllowedValues"]) {
        let t: u64 = render(timeout).parse().unwrap();
        let visibility = map[&render(timeout)]["Seconds"].as_u64().unwrap();
        assert!(
            visibility >= 6 * t,
            "timeout {t}s: visibility {visibility}s < 6x"
        );
    }
    let queue = dispatch.resource("DispatchQueue");
    assert_eq!(
        render(&queue["RedrivePolicy"]["deadLetterTargetArn"]),
        "{DeadLetterQueue.Arn}"
    );
    let mapping = dispatch.resource("DispatchQueueMapping");
    assert_eq!(
        mapping["FunctionResponseTypes"],
        serde_json::json!(["ReportBatchItemFailures"])
    );

    // The backfill event is the one the dispatcher parses: its numbers and flags are the
    // parameters' defaults once deployed.
    let mut input = render(&dispatch.resource("BackfillSchedule")["Target"]["Input"]);
    for name in ["BackfillLookbackDays", "InboxKeysStartWithDate"] {
        let default = render(&dispatch.parameter(name)["Default"]);
        input = input.replace(&format!("{{{name}}}"), &default);
    }
    let event: Value = serde_json::from_str(&input).expect("schedule input is JSON");
    assert_eq!(
        event,
        serde_json::json!({"bucket": "import({StackPrefix}-InboxBucket)", "prefix": "{InboxPrefix}",
                           "dry_run": false, "lookback_days": 7, "dated_keys": false})
    );
    let request: duff_dispatcher::event::BackfillRequest =
        serde_json::from_value(event).expect("the dispatcher parses it");
    assert_eq!(
        (request.lookback_days, request.dated_keys),
        (Some(7), false)
    );
}

#[test]
fn api_gateway_methods_are_valid_authorized_and_logged() {
    let mut problems = Vec::new();
    let mut stages = 0;
    // Signed requests (IAM) by default, the API key as the other mode: one condition decides both.
    let iam_or_key = |m: &serde_json::Value| {
        m["AuthorizationType"] == serde_json::json!({"Fn::If": ["UsesApiKey", "NONE", "AWS_IAM"]})
            && m["ApiKeyRequired"] == serde_json::json!({"Fn::If": ["UsesApiKey", true, false]})
    };
    for t in Template::all() {
        for (id, m) in t.resources("AWS::ApiGateway::Method") {
            let method = render(&m["HttpMethod"]);
            if ![
                "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "ANY",
            ]
            .contains(&method.as_str())
            {
                problems.push(format!("{} {id}: HttpMethod {method}", t.file));
            }
            // Open: only GETs of the dashboard's page (the root) and its static files.
            let open = m["AuthorizationType"] == "NONE" && m["ApiKeyRequired"] == false;
            let static_files = m["ResourceId"]
                == serde_json::json!({"Fn::GetAtt": ["RestApi", "RootResourceId"]})
                || m["ResourceId"] == serde_json::json!({"Ref": "AssetFileResource"});
            if open && !(static_files && method == "GET") {
                problems.push(format!(
                    "{} {id}: open, and not the dashboard's files",
                    t.file
                ));
            }
            if !open && !iam_or_key(m) {
                problems.push(format!(
                    "{} {id}: neither IAM nor the API key required: {} / {}",
                    t.file, m["AuthorizationType"], m["ApiKeyRequired"]
                ));
            }
            // Lambda proxy integrations are always invoked with POST, whatever the client used.
            if m["Integration"]["Type"] == "AWS_PROXY"
                && m["Integration"]["IntegrationHttpMethod"] != "POST"
            {
                problems.push(format!(
                    "{} {id}: Lambda proxy integration must use POST",
                    t.file
                ));
            }
        }
        for (id, s) in t.resources("AWS::ApiGateway::Stage") {
            stages += 1;
            // Access logs: to a log group of this stack that expires, one JSON object per
            // request naming the request, the caller, the key and the outcome.
            let logs = &s["AccessLogSetting"];
            let group = logs["DestinationArn"]["Fn::GetAtt"][0]
                .as_str()
                .unwrap_or("");
            let retained = t
                .resources("AWS::Logs::LogGroup")
                .any(|(g, p)| g == group && !p["RetentionInDays"].is_null());
            if !retained {
                problems.push(format!("{} {id}: no access log group that expires", t.file));
            }
            match serde_json::from_str::<serde_json::Value>(&render(&logs["Format"])) {
                Ok(format) => {
                    for field in [
                        "requestId",
                        "ip",
                        "apiKeyId",
                        "caller",
                        "method",
                        "path",
                        "status",
                    ] {
                        if !format[field]
                            .as_str()
                            .is_some_and(|v| v.starts_with("$context."))
                        {
                            problems.push(format!("{} {id}: access log without {field}", t.file));
                        }
                    }
                }
                Err(e) => {
                    problems.push(format!("{} {id}: access log format not JSON: {e}", t.file))
                }
            }
            for setting in one_or_many(&s["MethodSettings"]) {
                let method = render(&setting["HttpMethod"]);
                if ![
                    "*", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
                ]
                .contains(&method.as_str())
                {
                    problems.push(format!(
                        "{} {id}: MethodSettings HttpMethod {method}",
                        t.file
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(stages > 0, "no API Gateway stage checked");

    let api = Template::load("api.yaml");
    // The static files' path: /assets/{file}, as the router serves them.
    let assets = api.resource("AssetsResource");
    assert_eq!(assets["PathPart"], "assets");
    assert_eq!(
        assets["ParentId"],
        serde_json::json!({"Fn::GetAtt": ["RestApi", "RootResourceId"]})
    );
    let file = api.resource("AssetFileResource");
    assert_eq!(
        (&file["PathPart"], &file["ParentId"]),
        (
            &serde_json::json!("{file}"),
            &serde_json::json!({"Ref": "AssetsResource"})
        )
    );
    // Everything else is behind the proxy resource, which requires IAM or the key.
    assert!(iam_or_key(api.resource("ProxyMethod")));
    let auth = &api.root["Parameters"]["ApiAuth"];
    assert_eq!(auth["Default"], "IAM", "signed requests by default");
    assert_eq!(auth["AllowedValues"], serde_json::json!(["IAM", "API_KEY"]));
    // The key, its usage plan and its output exist only in key mode; the readers' policy only
    // in IAM mode, and it lets its holders GET on this API's stage, nothing else.
    for id in ["ApiKey", "UsagePlan", "UsagePlanKey", "KeyDeployment"] {
        assert_eq!(api.root["Resources"][id]["Condition"], "UsesApiKey", "{id}");
    }
    for id in ["ApiReadersPolicy", "IamDeployment"] {
        assert_eq!(api.root["Resources"][id]["Condition"], "UsesIam", "{id}");
    }
    assert_eq!(api.root["Outputs"]["ApiKeyId"]["Condition"], "UsesApiKey");
    assert_eq!(
        api.root["Outputs"]["ApiReadersPolicyArn"]["Condition"],
        "UsesIam"
    );
    let readers = &api.resource("ApiReadersPolicy")["PolicyDocument"]["Statement"];
    assert_eq!(readers.as_array().map(Vec::len), Some(1));
    assert_eq!(readers[0]["Action"], "execute-api:Invoke");
    assert!(
        render(&readers[0]["Resource"]).ends_with(":{RestApi}/{StageName}/GET/*"),
        "{}",
        render(&readers[0]["Resource"])
    );
    // Switching the mode replaces the deployment (a snapshot of the methods' authorization).
    let stage = api
        .resources("AWS::ApiGateway::Stage")
        .next()
        .expect("a stage")
        .1;
    assert_eq!(
        stage["DeploymentId"],
        serde_json::json!({"Fn::If": ["UsesApiKey", {"Ref": "KeyDeployment"}, {"Ref": "IamDeployment"}]})
    );
}

/// The Batch job's image builds `duff` without the local commands' features (`serve`,
/// `dispatch`), and so without DataFusion, axum or the Athena SDK: the job runs `duff job` and
/// `duff lake`, and those would only add build time and image size. The dispatcher Lambda has
/// none of them either.
#[test]
fn the_job_image_leaves_the_query_engine_and_the_web_server_out() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("infra/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("cargo build --release --locked --bin duff --no-default-features"),
        "{dockerfile}"
    );
    let tree = |package: &str, extra: &[&str]| -> String {
        let out = std::process::Command::new(env!("CARGO"))
            .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
            .args(["--locked", "--offline"])
            .args(extra)
            .current_dir(root)
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let full = tree("duff", &[]);
    let job = tree("duff", &["--no-default-features"]);
    let dispatcher = tree("duff-dispatcher", &[]);
    for name in ["datafusion ", "axum ", "aws-sdk-athena ", "duff-api "] {
        assert!(
            full.lines().any(|l| l.starts_with(name)),
            "{name}in the full command: the check sees it"
        );
        assert!(
            !job.lines().any(|l| l.starts_with(name)),
            "{name}in the job's build"
        );
        assert!(
            !dispatcher.lines().any(|l| l.starts_with(name)),
            "{name}in the dispatcher's build"
        );
    }
    // What the job needs is still there.
    for name in ["duff-delta ", "duff-s3 ", "aws-sdk-s3 "] {
        assert!(job.lines().any(|l| l.starts_with(name)), "{name}");
    }
    // The crash points: only the tests' build (with dev-dependencies) has them.
    let engine_features = |extra: &[&str]| -> String {
        let mut args = vec!["-f", "{p} [{f}]"];
        args.extend_from_slice(extra);
        let tree = tree("duff", &args);
        let line = tree.lines().find(|l| l.starts_with("duff-engine "));
        line.expect("duff-engine in the tree").to_string()
    };
    for build in [&[][..], &["--no-default-features"], &["--all-features"]] {
        let features = engine_features(build);
        assert!(!features.contains("failpoints"), "{build:?}: {features}");
    }
    let tests = engine_features(&["-e", "dev"]);
    assert!(tests.contains("failpoints"), "the tests' build: {tests}");
}
