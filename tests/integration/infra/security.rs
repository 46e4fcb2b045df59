//! Least-privilege IAM and private, encrypted, TLS-only buckets.

use duff_delta::lease::LEASE_OBJECT;
use duff_dispatcher::ledger::LEDGER_DIR;
use duff_engine::lake::STAGING_DIR;

use super::template::{Template, one_or_many, policy_documents, render};

/// Actions that have no resource type (IAM only accepts `Resource: "*"` for them).
const RESOURCE_STAR_ONLY: [(&str, &str); 2] = [
    (
        "ecr:GetAuthorizationToken",
        "the registry login token is account-wide; the pull itself is scoped to the repository",
    ),
    (
        "batch:DescribeJobs",
        "Batch authorises it on no resource type; it only reads the state of jobs",
    ),
];

#[test]
fn iam_allows_no_wildcard_action_and_no_unscoped_resource() {
    let mut problems = Vec::new();
    // What was looked at: a test that found no policy would pass on nothing.
    let (mut roles, mut roles_with_allows, mut allows) = (0, 0, 0);
    for t in Template::all() {
        for (id, role) in t.resources("AWS::IAM::Role") {
            roles += 1;
            let grants = one_or_many(&role["Policies"])
                .iter()
                .flat_map(|p| one_or_many(&p["PolicyDocument"]["Statement"]))
                .any(|st| st["Effect"] == "Allow");
            let managed = !one_or_many(&role["ManagedPolicyArns"]).is_empty();
            if grants || managed {
                roles_with_allows += 1;
            } else {
                problems.push(format!("{} {id}: a role that grants nothing", t.file));
            }
        }
        for (place, doc) in policy_documents(&t) {
            for (i, st) in one_or_many(&doc["Statement"]).into_iter().enumerate() {
                let at = format!("{place} statement {i} ({})", render(&st["Sid"]));
                if st["Effect"] != "Allow" {
                    continue; // a Deny may be broad: it only takes rights away (e.g. TLS-only)
                }
                allows += 1;
                for key in ["NotAction", "NotResource", "NotPrincipal"] {
                    if !st[key].is_null() {
                        problems.push(format!("{at}: Allow with {key}"));
                    }
                }
                let actions: Vec<String> =
                    one_or_many(&st["Action"]).into_iter().map(render).collect();
                for a in actions.iter().filter(|a| a.contains('*')) {
                    problems.push(format!("{at}: wildcard action {a}"));
                }
                for r in one_or_many(&st["Resource"]).into_iter().map(render) {
                    if r == "*" {
                        for a in &actions {
                            if !RESOURCE_STAR_ONLY.iter().any(|(x, _)| x == a) {
                                problems.push(format!(
                                    "{at}: {a} on Resource \"*\" (it supports a scoped resource)"
                                ));
                            }
                        }
                    } else if !r.contains('{') && !r.contains("import(") {
                        problems.push(format!(
                            "{at}: literal resource {r} (derive it from the stack)"
                        ));
                    }
                }
                if one_or_many(&st["Resource"]).is_empty() {
                    problems.push(format!("{at}: no Resource"));
                }
                // Resource policies letting an AWS service in must say on whose behalf.
                if let Some(p) = st["Principal"].as_object() {
                    if p.contains_key("Service") && st["Condition"].is_null() {
                        problems.push(format!(
                            "{at}: service principal without aws:SourceArn/SourceAccount condition"
                        ));
                    }
                    if p.get("AWS").is_some_and(|a| render(a) == "*") {
                        problems.push(format!("{at}: Allow to every principal"));
                    }
                } else if st["Principal"] == "*" {
                    problems.push(format!("{at}: Allow to every principal"));
                }
            }
        }
        // No account ids or other literal ARNs anywhere: everything comes from AWS::AccountId,
        // AWS::Region, parameters and exports.
        for (n, line) in t.text.lines().enumerate() {
            let digits12 = line
                .split(|c: char| !c.is_ascii_digit())
                .any(|d| d.len() == 12);
            if digits12 || line.contains("arn:aws:") {
                problems.push(format!(
                    "{}:{}: hard-coded account id or ARN: {}",
                    t.file,
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "IAM least privilege:\n  {}",
        problems.join("\n  ")
    );
    // The deployment's roles: API, dispatcher, job, job execution, Batch scheduler, backfill
    // scheduler at least; each grants something, and every grant was checked above.
    assert!(roles >= 6, "{roles} roles found");
    assert_eq!(roles_with_allows, roles);
    assert!(allows >= roles, "{allows} Allow statements checked");
}

#[test]
fn every_bucket_is_private_encrypted_tls_only_and_expires_leftovers() {
    let mut problems = Vec::new();
    let mut buckets = 0;
    for t in Template::all() {
        for (id, b) in t.resources("AWS::S3::Bucket") {
            buckets += 1;
            let at = format!("{} {id}", t.file);
            let pab = &b["PublicAccessBlockConfiguration"];
            for k in [
                "BlockPublicAcls",
                "BlockPublicPolicy",
                "IgnorePublicAcls",
                "RestrictPublicBuckets",
            ] {
                if pab[k] != true {
                    problems.push(format!(
                        "{at}: PublicAccessBlockConfiguration.{k} is not true"
                    ));
                }
            }
            let sse = &b["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
                ["SSEAlgorithm"];
            if !["AES256", "aws:kms", "aws:kms:dsse"].contains(&render(sse).as_str()) {
                problems.push(format!("{at}: no default encryption"));
            }
            let rules = one_or_many(&b["LifecycleConfiguration"]["Rules"]);
            if !rules
                .iter()
                .any(|r| r["AbortIncompleteMultipartUpload"].is_object())
            {
                problems.push(format!(
                    "{at}: no lifecycle rule aborting incomplete multipart uploads"
                ));
            }
            // An expiration rule for exactly this prefix (None: the whole bucket).
            let expires = |prefix: Option<&str>| {
                rules
                    .iter()
                    .any(|r| !r["ExpirationInDays"].is_null() && r["Prefix"].as_str() == prefix)
            };
            let staging = format!("{STAGING_DIR}/");
            let ledger = format!("{LEDGER_DIR}/");
            for prefix in [&staging, &ledger] {
                if id == "LakeBucket" && !expires(Some(prefix)) {
                    problems.push(format!("{at}: no lifecycle rule expiring {prefix}"));
                }
            }
            // The inbox (the only copy of the customer's data) and the lake keep earlier
            // versions, for a while.
            if id == "InboxBucket" || id == "LakeBucket" {
                if b["VersioningConfiguration"]["Status"] != "Enabled" {
                    problems.push(format!("{at}: not versioned"));
                }
                if !rules.iter().any(|r| {
                    r["Status"] == "Enabled"
                        && !r["NoncurrentVersionExpiration"]["NoncurrentDays"].is_null()
                }) {
                    problems.push(format!("{at}: earlier versions are kept forever"));
                }
            }
            if id == "AthenaResultsBucket" && !expires(None) {
                problems.push(format!("{at}: query results never expire"));
            }
            let tls_only = t.resources("AWS::S3::BucketPolicy").any(|(_, p)| {
                render(&p["Bucket"]) == format!("{{{id}}}")
                    && one_or_many(&p["PolicyDocument"]["Statement"])
                        .iter()
                        .any(|s| {
                            let resources: Vec<_> = one_or_many(&s["Resource"])
                                .into_iter()
                                .map(render)
                                .collect();
                            s["Effect"] == "Deny"
                                && render(&s["Condition"]["Bool"]["aws:SecureTransport"]) == "false"
                                && render(&s["Action"]) == "s3:*"
                                && resources.contains(&format!("{{{id}.Arn}}"))
                                && resources.contains(&format!("{{{id}.Arn}}/*"))
                        })
            });
            if !tls_only {
                problems.push(format!("{at}: no bucket policy denying requests without TLS (aws:SecureTransport=false) on the bucket and its objects"));
            }
        }
    }
    assert_eq!(buckets, 4, "inbox, lake, Athena results, artifacts");
    assert!(problems.is_empty(), "buckets:\n  {}", problems.join("\n  "));
}

/// Deleting in the lake loses data for good once the noncurrent versions expire: only the
/// vacuum job's role may delete lake objects; the roles that ingest, fold and optimize delete
/// only the fold's lease, and the dispatcher its ledger markers too.
#[test]
fn only_the_vacuum_job_deletes_in_the_lake() {
    const VACUUM_ROLE: &str = "VacuumJobRole";
    // The lake bucket's ARN, as the templates import it.
    let lake = "import({StackPrefix}-LakeBucketArn)";
    let lease = format!("{lake}/{LEASE_OBJECT}");
    let ledger = format!("{lake}/{LEDGER_DIR}/*");
    let mut problems = Vec::new();
    // (role, lake resources it may delete)
    let mut deleters: Vec<(String, Vec<String>)> = Vec::new();
    for t in Template::all() {
        for (id, role) in t.resources("AWS::IAM::Role") {
            let statements = one_or_many(&role["Policies"])
                .iter()
                .flat_map(|p| one_or_many(&p["PolicyDocument"]["Statement"]))
                .filter(|st| st["Effect"] == "Allow")
                .collect::<Vec<_>>();
            let mut deletes = Vec::new();
            for st in statements {
                let actions: Vec<String> =
                    one_or_many(&st["Action"]).into_iter().map(render).collect();
                if !actions.iter().any(|a| a.starts_with("s3:Delete")) {
                    continue;
                }
                for r in one_or_many(&st["Resource"]).into_iter().map(render) {
                    if r.starts_with(lake) {
                        deletes.push(r);
                    }
                }
            }
            if deletes.is_empty() {
                continue;
            }
            let scoped = |r: &String| *r == lease || (id.starts_with("Dispatcher") && *r == ledger);
            if id != VACUUM_ROLE && !deletes.iter().all(scoped) {
                problems.push(format!("{} {id} may delete {deletes:?}", t.file));
            }
            deleters.push((id.to_string(), deletes));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let may = |id: &str, what: &str| {
        deleters
            .iter()
            .any(|(role, deletes)| role == id && deletes.iter().any(|d| d == what))
    };
    assert!(may(VACUUM_ROLE, &format!("{lake}/*")), "{deleters:?}");
    assert!(
        may("JobRole", &lease) && may("DispatcherRole", &lease),
        "{deleters:?}"
    );
    assert!(may("DispatcherRole", &ledger), "{deleters:?}");
}

/// EventBridge delivers to a queue or topic only if its resource policy lets that rule in: a
/// target (or dead-letter queue) added without it fails silently in AWS, every event dropped.
#[test]
fn every_event_rule_may_deliver_to_its_targets_and_dead_letter_queues() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for t in Template::all() {
        // (resource as rendered, action EventBridge needs, the rules it lets in)
        let mut grants: Vec<(String, &str, Vec<String>)> = Vec::new();
        for (ty, action, resources) in [
            ("AWS::SQS::QueuePolicy", "sqs:SendMessage", "Queues"),
            ("AWS::SNS::TopicPolicy", "sns:Publish", "Topics"),
        ] {
            for (_, policy) in t.resources(ty) {
                assert!(!one_or_many(&policy[resources]).is_empty());
                for st in one_or_many(&policy["PolicyDocument"]["Statement"]) {
                    let from_events = render(&st["Principal"]["Service"]) == "events.amazonaws.com";
                    let acts: Vec<String> =
                        one_or_many(&st["Action"]).into_iter().map(render).collect();
                    if st["Effect"] != "Allow" || !from_events || !acts.iter().any(|a| a == action)
                    {
                        continue;
                    }
                    let rules = one_or_many(&st["Condition"]["ArnEquals"]["aws:SourceArn"])
                        .into_iter()
                        .map(render)
                        .collect();
                    grants.push((render(&st["Resource"]), action, rules));
                }
            }
        }
        for (rule, props) in t.resources("AWS::Events::Rule") {
            for target in one_or_many(&props["Targets"]) {
                let destinations = [&target["Arn"], &target["DeadLetterConfig"]["Arn"]];
                for arn in destinations.into_iter().filter(|a| !a.is_null()) {
                    checked += 1;
                    let arn = render(arn);
                    let rule_arn = format!("{{{rule}.Arn}}");
                    let allowed = grants
                        .iter()
                        .any(|(resource, _, rules)| *resource == arn && rules.contains(&rule_arn));
                    if !allowed {
                        problems.push(format!(
                            "{} {rule} target {}: no queue or topic policy lets {rule_arn} send to {arn}",
                            t.file,
                            render(&target["Id"])
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The upload rule (queue and dead letters), the failed-job rule (topic, queue, dead letters).
    assert!(checked >= 5, "{checked} deliveries checked");
}
