#!/usr/bin/env bash
# Deploys the Duff orders engine to one AWS account and region with one command:
# builds the two Lambda packages and the Batch job image, deploys the five CloudFormation stacks
# in dependency order (storage, catalog, batch, dispatch, api), pushes the image and uploads the
# Lambda zips in between, and prints the inbox, the API URL and how to call it.
#
#   infra/deploy.sh --region eu-west-1 --alarm-email ops@example.com
#   infra/deploy.sh --dry-run --account 123456789012 --region eu-west-1   # print, run nothing
#   infra/deploy.sh --endpoint-url http://127.0.0.1:4566 --api-auth key   # a local emulator
#
# Every step prints the exact command it runs ("+ ..."); --dry-run prints them all and calls
# neither aws nor docker nor cargo. Re-running is safe: unchanged stacks are no-ops, an image tag
# that is already in the repository is not pushed again.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: infra/deploy.sh [options]

Builds and deploys the Duff orders engine (Lambdas, Batch image, CloudFormation stacks).

Options (environment variable in brackets):
  --prefix NAME          stack prefix shared by all stacks and resource names [DUFF_STACK_PREFIX]
                         (default: duff; lower case, 3-20 characters)
  --region REGION        AWS region [AWS_REGION, AWS_DEFAULT_REGION] (required)
  --account ID           expected AWS account id; the deploy stops if the credentials belong to
                         another account [DUFF_ACCOUNT_ID] (default: whatever the credentials are)
  --alarm-email ADDR     e-mail subscribed to the alarm topic [DUFF_ALARM_EMAIL] (default: none)
  --vpc-id ID            VPC of the Batch jobs [DUFF_VPC_ID] (default: the default VPC)
  --subnet-ids A,B       subnets of the Batch jobs [DUFF_SUBNET_IDS] (default: the default
                         VPC's default subnets)
  --image-tag TAG        tag of the job image [DUFF_IMAGE_TAG] (default: git commit, plus
                         -dirty-<UTC time> when the work tree has changes)
  --size-threshold BYTES inputs at or above this go to Batch (stack default: 104857600)
  --schedule EXPR        backfill schedule, e.g. 'cron(0 3 * * ? *)' (stack default)
  --api-auth iam|key     who may call the API [DUFF_API_AUTH] (default: iam): iam = requests
                         signed (SigV4) by principals given the stack's readers policy; key = an
                         API key under a usage plan (needed to open the dashboard in a browser)
  --api-backend athena|lake
                         where the API computes reports [DUFF_API_BACKEND] (default: athena):
                         athena = Athena queries; lake = the API Lambda reads the lake's Delta
                         tables in S3 itself (docs/api.md, "Backends")
  --param STACK:K=V      any other stack parameter, repeatable; STACK is one of
                         storage, catalog, batch, dispatch, api
                         (e.g. --param batch:JobVcpu=4 --param batch:JobMemoryMiB=8192)
  --skip-build           reuse the Lambda zips and the image built by an earlier run
  --endpoint-url URL     deploy to a local AWS emulator (MiniStack) at URL instead of AWS
                         [DUFF_ENDPOINT_URL] (default: none = AWS). The same stacks, zips and
                         settings, with these substitutions, each printed as it is made:
                         the Lambdas are built for this host (debug profile) instead of arm64;
                         no image is built or pushed, no VPC is looked up (the emulator runs no
                         containers); the job queue and job definition are created through the
                         Batch API and infra/emulator/batch-exports.yaml stands in for
                         batch.yaml (the emulator's CloudFormation has no AWS::Batch types);
                         the queue mapping's MaximumConcurrency is set again through the Lambda
                         API (the emulator keeps the template's value as a string); the API
                         URL printed is the emulator's http://<id>.execute-api.localhost:<port>/.
                         Region defaults to us-east-1, credentials to test/test.
  --lambda-binaries DIR  with --endpoint-url: zip the Lambdas from the host binaries
                         duff-dispatcher-lambda and duff-api-lambda in DIR instead of building
                         them (e.g. target/debug after cargo test)
  --dry-run              print every step and command; call no AWS API, build nothing
  -h, --help             this help

Needs: aws CLI v2, docker with buildx (arm64 builds), cargo and cargo-lambda
(pip install cargo-lambda), git. The default VPC (or --vpc-id/--subnet-ids) must let Fargate
tasks reach ECR, S3 and CloudWatch Logs.
EOF
}

die() { echo "deploy.sh: $*" >&2; exit 1; }

# ------------------------------------------------------------------ options
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${DUFF_STACK_PREFIX:-duff}"
REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
ACCOUNT="${DUFF_ACCOUNT_ID:-}"
ALARM_EMAIL="${DUFF_ALARM_EMAIL:-}"
VPC_ID="${DUFF_VPC_ID:-}"
SUBNET_IDS="${DUFF_SUBNET_IDS:-}"
IMAGE_TAG="${DUFF_IMAGE_TAG:-}"
SIZE_THRESHOLD=""
SCHEDULE=""
API_AUTH="${DUFF_API_AUTH:-iam}"
API_BACKEND="${DUFF_API_BACKEND:-athena}"
EXTRA_PARAMS=()
SKIP_BUILD=false
DRY_RUN=false
ENDPOINT_URL="${DUFF_ENDPOINT_URL:-}"
LAMBDA_BINARIES=""

need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --prefix) need_value "$@"; PREFIX="$2"; shift 2 ;;
    --region) need_value "$@"; REGION="$2"; shift 2 ;;
    --account) need_value "$@"; ACCOUNT="$2"; shift 2 ;;
    --alarm-email) need_value "$@"; ALARM_EMAIL="$2"; shift 2 ;;
    --vpc-id) need_value "$@"; VPC_ID="$2"; shift 2 ;;
    --subnet-ids) need_value "$@"; SUBNET_IDS="$2"; shift 2 ;;
    --image-tag) need_value "$@"; IMAGE_TAG="$2"; shift 2 ;;
    --size-threshold) need_value "$@"; SIZE_THRESHOLD="$2"; shift 2 ;;
    --schedule) need_value "$@"; SCHEDULE="$2"; shift 2 ;;
    --api-auth) need_value "$@"; API_AUTH="$2"; shift 2 ;;
    --api-backend) need_value "$@"; API_BACKEND="$2"; shift 2 ;;
    --param) need_value "$@"; EXTRA_PARAMS+=("$2"); shift 2 ;;
    --skip-build) SKIP_BUILD=true; shift ;;
    --endpoint-url) need_value "$@"; ENDPOINT_URL="$2"; shift 2 ;;
    --lambda-binaries) need_value "$@"; LAMBDA_BINARIES="$2"; shift 2 ;;
    --dry-run) DRY_RUN=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

EMULATOR=false
if [[ -n "$ENDPOINT_URL" ]]; then
  [[ "$ENDPOINT_URL" =~ ^https?://[^/]+/?$ ]] || die "--endpoint-url '$ENDPOINT_URL': expected http(s)://host:port"
  EMULATOR=true
  REGION="${REGION:-us-east-1}"
  # Every aws call here and every SDK honour AWS_ENDPOINT_URL (the CLI's SQS does not, and is not
  # used here); an emulator takes any credentials.
  export AWS_ENDPOINT_URL="${ENDPOINT_URL%/}"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
elif [[ -n "$LAMBDA_BINARIES" ]]; then
  die "--lambda-binaries goes with --endpoint-url (AWS runs arm64 zips built by cargo lambda)"
fi
[[ -z "$LAMBDA_BINARIES" || -d "$LAMBDA_BINARIES" ]] || die "--lambda-binaries '$LAMBDA_BINARIES' is not a directory"

[[ "$PREFIX" =~ ^[a-z][a-z0-9-]{1,18}[a-z0-9]$ ]] || die "--prefix '$PREFIX': 3-20 of a-z, 0-9, '-', starting with a letter"
[[ -n "$REGION" ]] || die "no region: pass --region or set AWS_REGION"
[[ -z "$ACCOUNT" || "$ACCOUNT" =~ ^[0-9]{12}$ ]] || die "--account '$ACCOUNT' is not a 12-digit account id"
[[ -z "$SIZE_THRESHOLD" || "$SIZE_THRESHOLD" =~ ^[0-9]+$ ]] || die "--size-threshold must be a number of bytes"
case "$API_AUTH" in
  iam) API_AUTH_PARAM=IAM ;;
  key) API_AUTH_PARAM=API_KEY ;;
  *) die "--api-auth '$API_AUTH': expected iam or key" ;;
esac
case "$API_BACKEND" in
  athena) API_BACKEND_PARAM=Athena ;;
  lake) API_BACKEND_PARAM=Lake ;;
  *) die "--api-backend '$API_BACKEND': expected athena or lake" ;;
esac
if [[ -n "$VPC_ID" && -z "$SUBNET_IDS" ]] || [[ -z "$VPC_ID" && -n "$SUBNET_IDS" ]]; then
  die "--vpc-id and --subnet-ids go together"
fi
STACKS=(storage catalog batch dispatch api)
for p in "${EXTRA_PARAMS[@]+"${EXTRA_PARAMS[@]}"}"; do
  [[ "$p" =~ ^(storage|catalog|batch|dispatch|api):[A-Za-z0-9]+=.*$ ]] || die "--param '$p': expected STACK:Key=Value with STACK one of ${STACKS[*]}"
done

TEMPLATES="$REPO_ROOT/infra/templates"
BUILD_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/deploy"
LAMBDAS=(duff-dispatcher-lambda duff-api-lambda)
lambda_package() { case "$1" in duff-dispatcher-lambda) echo duff-dispatcher ;; duff-api-lambda) echo duff-api ;; esac; }
LOCAL_IMAGE="duff-job:local"

if [[ -z "$IMAGE_TAG" ]]; then
  IMAGE_TAG="$(git -C "$REPO_ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo untracked)"
  if [[ -n "$(git -C "$REPO_ROOT" status --porcelain 2>/dev/null || true)" ]]; then
    IMAGE_TAG="$IMAGE_TAG-dirty-$(date -u +%Y%m%d%H%M%S)"
  fi
fi

# ------------------------------------------------------------------ helpers
STEP=0
TOTAL_STEPS=12
step() { STEP=$((STEP + 1)); echo; echo "==> [$STEP/$TOTAL_STEPS] $*"; }

# Commands are echoed to fd 3 (the script's stdout), also from inside $(...), so the log keeps
# its order and every printed command can be copied into a shell.
exec 3>&1
show() {
  local out="+" a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then out+=" $a"; else out+=" '${a//\'/\'\\\'\'}'"; fi
  done
  echo "$out" >&3
}

# Prints a command and runs it unless --dry-run.
run() {
  show "$@"
  if ! $DRY_RUN; then "$@"; fi
}

# Like run, for a command whose output is needed; in --dry-run prints $1 instead.
capture() {
  local placeholder="$1"; shift
  show "$@"
  if $DRY_RUN; then echo "$placeholder"; else "$@"; fi
}

stack_name() { echo "$PREFIX-$1"; }

stack_output() { # stack key [dry-run placeholder]
  local value
  value="$(capture "${3:-<$1.$2>}" aws cloudformation describe-stacks --region "$REGION" --stack-name "$(stack_name "$1")" \
    --query "Stacks[0].Outputs[?OutputKey=='$2'].OutputValue" --output text)"
  [[ -n "$value" && "$value" != "None" ]] || die "stack $(stack_name "$1") has no output $2"
  echo "$value"
}

deploy_stack() { # stack Key=Value...
  local stack="$1"; shift
  local template="$TEMPLATES/$stack.yaml"
  if $EMULATOR && [[ "$stack" == batch ]]; then template="$REPO_ROOT/infra/emulator/batch-exports.yaml"; fi
  local params=(StackPrefix="$PREFIX" "$@") p
  for p in "${EXTRA_PARAMS[@]+"${EXTRA_PARAMS[@]}"}"; do
    [[ "$p" == "$stack:"* ]] && params+=("${p#*:}")
  done
  run aws cloudformation deploy --region "$REGION" --stack-name "$(stack_name "$stack")" \
    --template-file "$template" --capabilities CAPABILITY_IAM \
    --no-fail-on-empty-changeset --tags "duff:stack-prefix=$PREFIX" \
    --parameter-overrides "${params[@]}"
}

zip_path() { echo "$BUILD_DIR/lambda/$1/bootstrap.zip"; }

# Content-addressed key: a new build is a new key, so CloudFormation updates the function.
zip_key() {
  if $DRY_RUN; then echo "lambda/$1-<sha256>.zip"; return; fi
  local sum
  if command -v sha256sum >/dev/null; then sum="$(sha256sum "$(zip_path "$1")")"; else sum="$(shasum -a 256 "$(zip_path "$1")")"; fi
  echo "lambda/$1-${sum:0:64}.zip"
}

# True when the tag is already in the repository (tags are immutable: pushing it again fails).
image_exists() { # repository-name tag
  show aws ecr describe-images --region "$REGION" --repository-name "$1" --image-ids "imageTag=$2"
  $DRY_RUN && return 1
  aws ecr describe-images --region "$REGION" --repository-name "$1" --image-ids "imageTag=$2" >/dev/null 2>&1
}

if $EMULATOR; then
  $DRY_RUN || command -v aws >/dev/null || die "'aws' is not on PATH (tests/tools/install puts one in target/tmp/venv-emulator/bin)"
elif ! $DRY_RUN; then
  for tool in aws docker cargo git; do
    command -v "$tool" >/dev/null || die "'$tool' is not on PATH (see --help: Needs)"
  done
  $SKIP_BUILD || cargo lambda --version >/dev/null 2>&1 || die "cargo-lambda is missing: pip install cargo-lambda"
fi

echo "Duff deploy: prefix=$PREFIX region=$REGION account=${ACCOUNT:-<from credentials>} image tag=$IMAGE_TAG$($DRY_RUN && echo ' (dry run: nothing is executed)')"
$EMULATOR && echo "Target: the local AWS emulator at $AWS_ENDPOINT_URL (AWS_ENDPOINT_URL for every aws call)"

# An emulator deploy differs from an AWS deploy only where this is called, and says how.
substitute() { echo "emulator substitution: $*"; }

# A provided.al2023 zip of a host binary: one executable file named bootstrap.
zip_bootstrap() { # binary zip
  show python3 -m zipfile "$1 -> $2:bootstrap"
  $DRY_RUN && return
  mkdir -p "$(dirname "$2")"
  python3 - "$1" "$2" <<'PY'
import sys, zipfile
binary, out = sys.argv[1:]
entry = zipfile.ZipInfo("bootstrap")
entry.external_attr = 0o100755 << 16
entry.compress_type = zipfile.ZIP_DEFLATED
with open(binary, "rb") as f, zipfile.ZipFile(out, "w", compresslevel=1) as z:
    z.writestr(entry, f.read())
PY
}

# ------------------------------------------------------------------ build (local, no AWS)
if $EMULATOR; then
  step "build lambdas (this host's architecture, provided.al2023 bootstrap zips)"
  substitute "Lambdas built for $(uname -m) with the debug profile, not arm64 release (the emulator runs them as local processes)"
  binaries="$LAMBDA_BINARIES"
  if [[ -n "$binaries" ]]; then
    echo "using the binaries in $binaries (--lambda-binaries)"
  elif ! $SKIP_BUILD; then
    run cargo build --locked --manifest-path "$REPO_ROOT/Cargo.toml" \
      -p duff-dispatcher --bin duff-dispatcher-lambda -p duff-api --bin duff-api-lambda
    binaries="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"
  fi
fi
for bin in "${LAMBDAS[@]}"; do
  if $EMULATOR && [[ -n "${binaries:-}" ]]; then
    $DRY_RUN || [[ -x "$binaries/$bin" ]] || die "no executable $binaries/$bin"
    zip_bootstrap "$binaries/$bin" "$(zip_path "$bin")"
  elif $SKIP_BUILD; then
    echo "skipped (--skip-build): using $(zip_path "$bin")"
  else
    run cargo lambda build --release --arm64 --output-format zip --lambda-dir "$BUILD_DIR/lambda" \
      --manifest-path "$REPO_ROOT/Cargo.toml" -p "$(lambda_package "$bin")" --bin "$bin"
  fi
  $DRY_RUN || [[ -f "$(zip_path "$bin")" ]] || die "missing $(zip_path "$bin")"
done

step "build image (infra/Dockerfile, linux/arm64)"
if $EMULATOR; then
  substitute "no job image: the emulator's Batch accepts SubmitJob and runs nothing (run \`duff job\` with the job's parameters)"
elif $SKIP_BUILD; then
  echo "skipped (--skip-build): using $LOCAL_IMAGE"
else
  run docker buildx build --platform linux/arm64 --file "$REPO_ROOT/infra/Dockerfile" \
    --tag "$LOCAL_IMAGE" --load "$REPO_ROOT"
fi

# ------------------------------------------------------------------ account and network
step "check credentials and network"
CALLER_ACCOUNT="$(capture "${ACCOUNT:-<account>}" aws sts get-caller-identity --region "$REGION" --query Account --output text)"
if [[ -n "$ACCOUNT" && "$CALLER_ACCOUNT" != "$ACCOUNT" ]]; then
  die "the credentials belong to account $CALLER_ACCOUNT, not $ACCOUNT"
fi
if $EMULATOR; then
  substitute "no VPC or subnets: nothing runs on Fargate"
elif [[ -z "$VPC_ID" ]]; then
  VPC_ID="$(capture "<default-vpc>" aws ec2 describe-vpcs --region "$REGION" \
    --filters Name=is-default,Values=true --query 'Vpcs[0].VpcId' --output text)"
  [[ "$VPC_ID" != "None" && -n "$VPC_ID" ]] || die "no default VPC in $REGION: pass --vpc-id and --subnet-ids"
  SUBNET_IDS="$(capture "<default-subnets>" aws ec2 describe-subnets --region "$REGION" \
    --filters "Name=vpc-id,Values=$VPC_ID" Name=default-for-az,Values=true \
    --query 'Subnets[].SubnetId' --output text | tr -s '[:space:]' ',' | sed 's/,$//')"
  [[ -n "$SUBNET_IDS" ]] || die "the default VPC has no default subnets: pass --vpc-id and --subnet-ids"
fi

# ------------------------------------------------------------------ stacks and artifacts
step "deploy stack $(stack_name storage) (buckets, image repository)"
deploy_stack storage

step "push image"
if $EMULATOR; then
  substitute "no image pushed"
else
REPO_URI="$(stack_output storage ImageRepositoryUri "${ACCOUNT:-<account>}.dkr.ecr.$REGION.amazonaws.com/$PREFIX/job")"
REPO_NAME="${REPO_URI#*/}"
REGISTRY="${REPO_URI%%/*}"
if image_exists "$REPO_NAME" "$IMAGE_TAG"; then
  echo "$REPO_URI:$IMAGE_TAG is already in the repository (tags are immutable): not pushed again"
else
  echo "+ aws ecr get-login-password --region $REGION | docker login --username AWS --password-stdin $REGISTRY"
  $DRY_RUN || aws ecr get-login-password --region "$REGION" | docker login --username AWS --password-stdin "$REGISTRY"
  run docker tag "$LOCAL_IMAGE" "$REPO_URI:$IMAGE_TAG"
  run docker push "$REPO_URI:$IMAGE_TAG"
fi
fi

step "upload lambdas"
ARTIFACTS_BUCKET="$(stack_output storage ArtifactsBucketName "$PREFIX-artifacts-${ACCOUNT:-<account>}-$REGION")"
DISPATCHER_CODE_KEY="$(zip_key duff-dispatcher-lambda)"
API_CODE_KEY="$(zip_key duff-api-lambda)"
run aws s3 cp --region "$REGION" --only-show-errors "$(zip_path duff-dispatcher-lambda)" "s3://$ARTIFACTS_BUCKET/$DISPATCHER_CODE_KEY"
run aws s3 cp --region "$REGION" --only-show-errors "$(zip_path duff-api-lambda)" "s3://$ARTIFACTS_BUCKET/$API_CODE_KEY"

step "deploy stack $(stack_name catalog) (Glue tables, Athena workgroup)"
deploy_stack catalog

step "deploy stack $(stack_name batch) (Fargate compute, job queue, job definition)"
if $EMULATOR; then
  substitute "job queue and job definition created through the Batch API; infra/emulator/batch-exports.yaml exports their names in place of batch.yaml"
  batch_param() { # key default: the value given with --param batch:KEY=V, else batch.yaml's default
    local p value="$2"
    for p in "${EXTRA_PARAMS[@]+"${EXTRA_PARAMS[@]}"}"; do [[ "$p" == "batch:$1="* ]] && value="${p#*=}"; done
    echo "$value"
  }
  JOB_VCPU="$(batch_param JobVcpu 2)"
  JOB_MEMORY_MIB="$(batch_param JobMemoryMiB 4096)"
  JOB_LOG_GROUP="/duff/$PREFIX/batch-job"
  LAKE_BUCKET="$(stack_output storage LakeBucketName)"
  # A dry run shows a first deploy: no queue yet.
  QUEUE_ARN="$(capture None aws batch describe-job-queues --region "$REGION" --job-queues "$PREFIX-jobs" \
    --query 'jobQueues[0].jobQueueArn' --output text)"
  if [[ -z "$QUEUE_ARN" || "$QUEUE_ARN" == None ]]; then
    run aws batch create-compute-environment --region "$REGION" --compute-environment-name "$PREFIX-fargate" \
      --type MANAGED --compute-resources type=FARGATE,maxvCpus=16,subnets=subnet-emulator,securityGroupIds=sg-emulator >/dev/null
    QUEUE_ARN="$(capture "<job-queue-arn>" aws batch create-job-queue --region "$REGION" --job-queue-name "$PREFIX-jobs" \
      --priority 1 --compute-environment-order "order=1,computeEnvironment=$PREFIX-fargate" --query jobQueueArn --output text)"
  fi
  definition="$(sed -e "s|@PREFIX@|$PREFIX|g; s|@LAKE_BUCKET@|$LAKE_BUCKET|g; s|@REGION@|$REGION|g" \
    -e "s|@JOB_VCPU@|$JOB_VCPU|g; s|@JOB_MEMORY_MIB@|$JOB_MEMORY_MIB|g; s|@LOG_GROUP@|$JOB_LOG_GROUP|g" \
    "$REPO_ROOT/infra/emulator/job-definition.json")"
  run aws batch register-job-definition --region "$REGION" --cli-input-json "$definition" --output text >/dev/null
  deploy_stack batch JobQueueArn="$QUEUE_ARN" JobDefinitionName="$PREFIX-job" JobVcpu="$JOB_VCPU" \
    JobMemoryMiB="$JOB_MEMORY_MIB" JobLogGroupName="$JOB_LOG_GROUP"
else
  deploy_stack batch ImageTag="$IMAGE_TAG" VpcId="$VPC_ID" SubnetIds="$SUBNET_IDS"
fi

step "deploy stack $(stack_name dispatch) (queue, dispatcher Lambda, backfill schedule, alarms)"
# Parameters not given keep their current value (or the template default on the first deploy).
dispatch_params=(DispatcherCodeKey="$DISPATCHER_CODE_KEY")
[[ -n "$ALARM_EMAIL" ]] && dispatch_params+=(AlarmEmail="$ALARM_EMAIL")
[[ -n "$SIZE_THRESHOLD" ]] && dispatch_params+=(SizeThresholdBytes="$SIZE_THRESHOLD")
[[ -n "$SCHEDULE" ]] && dispatch_params+=(BackfillScheduleExpression="$SCHEDULE")
deploy_stack dispatch "${dispatch_params[@]}"
if $EMULATOR; then
  substitute "the queue mapping's MaximumConcurrency set again through the Lambda API, as a number"
  MAX_CONCURRENCY="$(capture 5 aws cloudformation describe-stacks --region "$REGION" --stack-name "$(stack_name dispatch)" \
    --query "Stacks[0].Parameters[?ParameterKey=='DispatcherMaxConcurrency'].ParameterValue" --output text)"
  MAPPING="$(capture "<mapping-uuid>" aws lambda list-event-source-mappings --region "$REGION" \
    --function-name "$PREFIX-dispatcher" --query 'EventSourceMappings[0].UUID' --output text)"
  run aws lambda update-event-source-mapping --region "$REGION" --uuid "$MAPPING" \
    --scaling-config "MaximumConcurrency=$MAX_CONCURRENCY" --output text >/dev/null
fi

step "deploy stack $(stack_name api) (API Lambda over $API_BACKEND, API Gateway, $API_AUTH authorization)"
deploy_stack api ApiCodeKey="$API_CODE_KEY" ApiAuth="$API_AUTH_PARAM" ApiBackend="$API_BACKEND_PARAM"

# ------------------------------------------------------------------ outputs
step "print outputs"
INBOX_BUCKET="$(stack_output storage InboxBucketName)"
INBOX_PREFIX="$(capture inbox/ aws cloudformation describe-stacks --region "$REGION" --stack-name "$(stack_name dispatch)" \
  --query "Stacks[0].Parameters[?ParameterKey=='InboxPrefix'].ParameterValue" --output text)"
API_URL="$(stack_output api ApiUrl)"
if $EMULATOR; then
  # The emulator serves https://<api id>.execute-api.<region>.amazonaws.com/<stage>/ at
  # http://<api id>.execute-api.localhost:<port>/<stage>/: the same paths, so the dashboard's
  # links resolve as in AWS (*.localhost is loopback for browsers and curl).
  API_ID="${API_URL#https://}"; API_ID="${API_ID%%.*}"
  STAGE="${API_URL%/}"; STAGE="${STAGE##*/}"
  EMULATOR_PORT="${AWS_ENDPOINT_URL##*:}"
  substitute "the API's URL $API_URL is served at http://$API_ID.execute-api.localhost:$EMULATOR_PORT/$STAGE/"
  API_URL="http://$API_ID.execute-api.localhost:$EMULATOR_PORT/$STAGE/"
fi
ACCESS_LOGS="$(stack_output api AccessLogGroupName)"
if [[ "$API_AUTH" == key ]]; then
  API_KEY_ID="$(stack_output api ApiKeyId)"
  # The key itself is never printed (logs keep it): the user fetches it when needed. An
  # emulator's key guards nothing, so it is printed there.
  KEY_COMMAND="aws apigateway get-api-key --region $REGION --api-key $API_KEY_ID --include-value --query value --output text"
  if $EMULATOR; then
    KEY="$(capture "<key>" aws apigateway get-api-key --region "$REGION" --api-key "$API_KEY_ID" --include-value --query value --output text)"
    ACCESS="API key:  $KEY
Try:      curl -H \"x-api-key: $KEY\" \"${API_URL}healthz\"   (the dashboard: ${API_URL})"
  else
    ACCESS="API key:  $KEY_COMMAND
Try:      curl -H \"x-api-key: \$($KEY_COMMAND)\" \"${API_URL}healthz\""
  fi
else
  READERS_POLICY="$(stack_output api ApiReadersPolicyArn)"
  ACCESS="Readers:  aws iam attach-user-policy --user-name <user> --policy-arn $READERS_POLICY   (or attach-role-policy)
Try:      curl --aws-sigv4 \"aws:amz:$REGION:execute-api\" --user \"\$AWS_ACCESS_KEY_ID:\$AWS_SECRET_ACCESS_KEY\" -H \"x-amz-security-token: \$AWS_SESSION_TOKEN\" \"${API_URL}healthz\"
          (a browser cannot sign: for the dashboard at this URL deploy with --api-auth key, or run duff serve)"
fi

step "done"
cat <<EOF
Inbox:    s3://$INBOX_BUCKET/$INBOX_PREFIX   (upload order CSV files here)
API URL:  $API_URL
$ACCESS
Requests: aws logs tail --region $REGION --follow $ACCESS_LOGS   (API access log, one JSON line per request)
EOF
$EMULATOR && echo "Upload:   AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL aws s3 cp orders.csv s3://$INBOX_BUCKET/$INBOX_PREFIX   (every aws command needs AWS_ENDPOINT_URL)"
$DRY_RUN && echo "(dry run: nothing was executed)"
exit 0
