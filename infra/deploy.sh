#!/usr/bin/env bash
# Deploys the Duff orders engine to one AWS account and region with one command:
# builds the two Lambda packages and the Batch job image, deploys the five CloudFormation stacks
# in dependency order (storage, catalog, batch, dispatch, api), pushes the image and uploads the
# Lambda zips in between, and prints the inbox, the API URL and how to call it.
#
#   infra/deploy.sh --region eu-west-1 --alarm-email ops@example.com
#   infra/deploy.sh --dry-run --account 123456789012 --region eu-west-1   # print, run nothing
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
    --dry-run) DRY_RUN=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

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
  local params=(StackPrefix="$PREFIX" "$@") p
  for p in "${EXTRA_PARAMS[@]+"${EXTRA_PARAMS[@]}"}"; do
    [[ "$p" == "$stack:"* ]] && params+=("${p#*:}")
  done
  run aws cloudformation deploy --region "$REGION" --stack-name "$(stack_name "$stack")" \
    --template-file "$TEMPLATES/$stack.yaml" --capabilities CAPABILITY_IAM \
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

if ! $DRY_RUN; then
  for tool in aws docker cargo git; do
    command -v "$tool" >/dev/null || die "'$tool' is not on PATH (see --help: Needs)"
  done
  $SKIP_BUILD || cargo lambda --version >/dev/null 2>&1 || die "cargo-lambda is missing: pip install cargo-lambda"
fi

echo "Duff deploy: prefix=$PREFIX region=$REGION account=${ACCOUNT:-<from credentials>} image tag=$IMAGE_TAG$($DRY_RUN && echo ' (dry run: nothing is executed)')"

# ------------------------------------------------------------------ build (local, no AWS)
step "build lambdas (cargo lambda, arm64, provided.al2023 bootstrap zips)"
for bin in "${LAMBDAS[@]}"; do
  if $SKIP_BUILD; then
    echo "skipped (--skip-build): using $(zip_path "$bin")"
  else
    run cargo lambda build --release --arm64 --output-format zip --lambda-dir "$BUILD_DIR/lambda" \
      --manifest-path "$REPO_ROOT/Cargo.toml" -p "$(lambda_package "$bin")" --bin "$bin"
  fi
  $DRY_RUN || [[ -f "$(zip_path "$bin")" ]] || die "missing $(zip_path "$bin")"
done

step "build image (infra/Dockerfile, linux/arm64)"
if $SKIP_BUILD; then
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
if [[ -z "$VPC_ID" ]]; then
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

step "upload lambdas"
ARTIFACTS_BUCKET="$(stack_output storage ArtifactsBucketName "$PREFIX-artifacts-${ACCOUNT:-<account>}-$REGION")"
DISPATCHER_CODE_KEY="$(zip_key duff-dispatcher-lambda)"
API_CODE_KEY="$(zip_key duff-api-lambda)"
run aws s3 cp --region "$REGION" --only-show-errors "$(zip_path duff-dispatcher-lambda)" "s3://$ARTIFACTS_BUCKET/$DISPATCHER_CODE_KEY"
run aws s3 cp --region "$REGION" --only-show-errors "$(zip_path duff-api-lambda)" "s3://$ARTIFACTS_BUCKET/$API_CODE_KEY"

step "deploy stack $(stack_name catalog) (Glue tables, Athena workgroup)"
deploy_stack catalog

step "deploy stack $(stack_name batch) (Fargate compute, job queue, job definition)"
deploy_stack batch ImageTag="$IMAGE_TAG" VpcId="$VPC_ID" SubnetIds="$SUBNET_IDS"

step "deploy stack $(stack_name dispatch) (queue, dispatcher Lambda, backfill schedule, alarms)"
# Parameters not given keep their current value (or the template default on the first deploy).
dispatch_params=(DispatcherCodeKey="$DISPATCHER_CODE_KEY")
[[ -n "$ALARM_EMAIL" ]] && dispatch_params+=(AlarmEmail="$ALARM_EMAIL")
[[ -n "$SIZE_THRESHOLD" ]] && dispatch_params+=(SizeThresholdBytes="$SIZE_THRESHOLD")
[[ -n "$SCHEDULE" ]] && dispatch_params+=(BackfillScheduleExpression="$SCHEDULE")
deploy_stack dispatch "${dispatch_params[@]}"

step "deploy stack $(stack_name api) (API Lambda over $API_BACKEND, API Gateway, $API_AUTH authorization)"
deploy_stack api ApiCodeKey="$API_CODE_KEY" ApiAuth="$API_AUTH_PARAM" ApiBackend="$API_BACKEND_PARAM"

# ------------------------------------------------------------------ outputs
step "print outputs"
INBOX_BUCKET="$(stack_output storage InboxBucketName)"
INBOX_PREFIX="$(capture inbox/ aws cloudformation describe-stacks --region "$REGION" --stack-name "$(stack_name dispatch)" \
  --query "Stacks[0].Parameters[?ParameterKey=='InboxPrefix'].ParameterValue" --output text)"
API_URL="$(stack_output api ApiUrl)"
ACCESS_LOGS="$(stack_output api AccessLogGroupName)"
if [[ "$API_AUTH" == key ]]; then
  API_KEY_ID="$(stack_output api ApiKeyId)"
  # The key itself is never printed (logs keep it): the user fetches it when needed.
  KEY_COMMAND="aws apigateway get-api-key --region $REGION --api-key $API_KEY_ID --include-value --query value --output text"
  ACCESS="API key:  $KEY_COMMAND
Try:      curl -H \"x-api-key: \$($KEY_COMMAND)\" \"${API_URL}healthz\""
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
$DRY_RUN && echo "(dry run: nothing was executed)"
exit 0
