"""The scripts of an AWS run's three containers, which share one task volume at /mycli.

- **fetch** (the stack's pinned helper image): the header, the clone with the git credentials
  (it is the only container that has them), the local changes applied in the clone, the inputs
  downloaded and extracted, then the executor's script written to /mycli/.mycli/run.sh — last,
  so its presence means the fetch finished. It always exits 0 unless the container itself dies:
  a failure is said in the log, and the executor then reports it with exit code 200.
- **executor** (the user's image): its command is the task definition's, `/bin/sh
  /mycli/.mycli/run.sh`, so the user's image needs /bin/sh and nothing else (no base64, gunzip,
  curl or git) whatever the size of the command. The script runs the command with the watchdog;
  on SIGTERM (a stop) it hands the command SIGTERM, SIGKILL after STOP_GRACE_SECONDS, and exits;
  however it exits, its EXIT trap leaves EXECUTOR_DONE on the volume.
- **publish** (helper image, started with the task; the executor waits for its START, so on a
  stop ECS stops the executor first and publish only once the executor has stopped: "when a
  dependency is defined for container startup, for container shutdown it is reversed"; its
  script is the task definition's command, kept equal to `publish_script()` by
  tests/aws/test_aws_template.py, so it takes no room in RunTask's overrides; the caps come in
  its environment): waits for EXECUTOR_DONE or its own SIGTERM, then walks /mycli/outputs in the
  shell (globs, never following a link), uploads each regular file under the caps as
  `artifacts/{id}/files/{n}`, then the manifest `artifacts/{id}/manifest` last; the engine
  reads the manifest (ecs_files.py). Its lines: `F<TAB>n<TAB>size<TAB>sha256<TAB>name` and
  `S<TAB>line` for a file left out. After a SIGTERM it has its stopTimeout (PUBLISH_STOP_TIMEOUT,
  Fargate's maximum) before SIGKILL: it starts no upload past MYCLI_PUBLISH_STOP_BUDGET seconds
  (default STOP_BUDGET_SECONDS) so the manifest still goes up.

S3 is reached with curl's SigV4 (`--aws-sigv4`) and the task role's credentials from the
container credentials endpoint, passed to curl on stdin (`-K -`), never in an argument; no
presigned URL or secret travels in RunTask's overrides. Pure string building, POSIX sh.
"""

from __future__ import annotations

from ..shell import (GitHosts, clone_lines, command_lines, not_started_lines, prologue_lines, sh_quote,
                     signal_trap_lines, temp_dir_lines)
from ..validation import ExecRequest
from .ecs_metadata import WATCH_SECONDS, executor_state_lines

VOLUME = "/mycli"
INPUTS = f"{VOLUME}/inputs"
OUTPUTS = f"{VOLUME}/outputs"
WORKDIR = f"{VOLUME}/work"
RUN_SCRIPT = f"{VOLUME}/.mycli/run.sh"
# The executor's exit, for publish: a directory anyone may write in (the user's image may run as
# another user), made by publish (which starts first) and fetch.
DONE_DIR = f"{VOLUME}/.mycli/done"
EXECUTOR_DONE = f"{DONE_DIR}/executor"
STOP_GRACE_SECONDS = 10  # the executor's, between SIGTERM and SIGKILL to the command
EXECUTOR_STOP_TIMEOUT = 30  # the template's stopTimeout for the executor: above the grace, room to report
PUBLISH_STOP_TIMEOUT = 120  # the template's for publish: Fargate's maximum
STOP_BUDGET_SECONDS = 90  # publish starts no upload later than this after its SIGTERM
MANIFEST_NAME = "manifest"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def upload_key(purpose: str, upload_id: str) -> str:
    return f"uploads/{purpose}/{upload_id}"


def artifacts_prefix(execution_id: str) -> str:
    return f"artifacts/{execution_id}/"


def _tools(names: str, packages: str) -> list[str]:
    """Install what the helper image lacks (the default alpine has none of git/curl)."""
    checks = " && ".join(f"command -v {n} >/dev/null 2>&1" for n in names.split())
    return [
        f"if ! {{ {checks}; }}; then",
        f"  apk add --no-cache {packages} >/dev/null 2>&1 || "
        f"{{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {packages}; }} >/dev/null 2>&1",
        "fi",
    ]


def s3_lines() -> list[str]:
    """`mycli_s3 METHOD KEY FILE SHA256`: GET KEY into FILE or PUT FILE at KEY (SHA256 the
    payload's hex digest; S3 refuses a body that does not match it)."""
    return [
        "mycli_s3() {",
        "  if [ -n \"${AWS_CONTAINER_CREDENTIALS_FULL_URI:-}\" ]; then",
        "    mycli_cu=$AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "  elif [ -n \"${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}\" ]; then",
        "    mycli_cu=\"http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI\"",
        "  else",
        "    echo 'ERROR: no task role credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not set)' >&2",
        "    return 1",
        "  fi",
        "  if [ -n \"${AWS_CONTAINER_AUTHORIZATION_TOKEN:-}\" ]; then",
        "    mycli_cj=$(printf 'header = \"Authorization: %s\"\\n' \"$AWS_CONTAINER_AUTHORIZATION_TOKEN\" | curl -sS --fail --retry 3 -K - \"$mycli_cu\") || return 1",
        "  else",
        "    mycli_cj=$(curl -sS --fail --retry 3 \"$mycli_cu\") || return 1",
        "  fi",
        "  mycli_cf() { printf '%s' \"$mycli_cj\" | sed -n \"s/.*\\\"$1\\\"[[:space:]]*:[[:space:]]*\\\"\\([^\\\"]*\\)\\\".*/\\1/p\"; }",
        "  mycli_ak=$(mycli_cf AccessKeyId); mycli_sk=$(mycli_cf SecretAccessKey); mycli_tk=$(mycli_cf Token)",
        "  if [ \"$1\" = PUT ]; then mycli_io=\"-T\"; else mycli_io=\"-o\"; fi",
        "  {",
        "    printf 'user = \"%s:%s\"\\n' \"$mycli_ak\" \"$mycli_sk\"",
        "    [ -z \"$mycli_tk\" ] || printf 'header = \"x-amz-security-token: %s\"\\n' \"$mycli_tk\"",
        "  } | curl -sS --fail --retry 3 -K - --aws-sigv4 \"aws:amz:${MYCLI_S3_REGION:-us-east-1}:s3\" -X \"$1\" \\",
        "      -H \"x-amz-content-sha256: $4\" \"$mycli_io\" \"$3\" \"${MYCLI_S3_URL%/}/$2\"",
        "}",
    ]


def files_and_size_lines() -> list[str]:
    """`mycli_files_and_size COUNT BYTES`: units.files_and_size's words (`3 files, 1.2 MiB`) in awk,
    so both engines say an artifact set alike (tests/engines/test_size_words.py compares them)."""
    return [
        "mycli_files_and_size() {",
        "  awk -v n=\"$1\" -v b=\"$2\" 'BEGIN { split(\"KiB MiB GiB\", u); i = 0;"
        " while (b >= 1024 && i < 3) { b /= 1024; i++ }"
        " if (i) s = sprintf(\"%.1f %s\", b, u[i]); else if (b >= 1000) s = sprintf(\"%d,%03d bytes\", int(b / 1000), b % 1000);"
        " else s = sprintf(\"%d byte%s\", b, b == 1 ? \"\" : \"s\");"
        " printf \"%d file%s, %s\\n\", n, n == 1 ? \"\" : \"s\", s }'",
        "}",
    ]


def fetch_script(request: ExecRequest, executor: str, hosts: GitHosts, notes: tuple[str, ...] = ()) -> str:
    """The fetch container's script; `executor` is the script it leaves on the volume for the
    executor."""
    lines = prologue_lines(request, notes, needs_tmp=True)
    tools = ("git curl", "git curl openssh-client") if not request.skip_git else ("curl", "curl")
    if request.inputs or request.local_changes:
        lines += _tools(*tools) + s3_lines()
    lines += [
        f"mkdir -p {INPUTS} {OUTPUTS} {WORKDIR} {DONE_DIR} || mycli_not_started 'the task volume is not writable'",
        f"chmod 1777 {DONE_DIR}",
    ]
    if request.inputs:
        key = sh_quote(upload_key("inputs", request.inputs))
        lines += [
            "echo '→ Downloading inputs...'",
            f"if ! mycli_s3 GET {key} \"$mycli_tmp/inputs.tgz\" {EMPTY_SHA256} || "
            f"! tar -xzf \"$mycli_tmp/inputs.tgz\" -C {INPUTS}; then",
            "  mycli_not_started 'the inputs could not be downloaded'",
            "fi",
            "rm -f \"$mycli_tmp/inputs.tgz\"",
            f"echo \"✓ Inputs in \\$MYCLI_INPUTS ({INPUTS})\"",
        ]
    if request.local_changes:
        key = sh_quote(upload_key("local_changes", request.local_changes))
        lines += [
            "MYCLI_LOCAL_CHANGES=\"$mycli_tmp/local-changes\"",
            "if ! mkdir -p \"$MYCLI_LOCAL_CHANGES\" || ! mycli_s3 GET " + key + f" \"$mycli_tmp/lc.tgz\" {EMPTY_SHA256} || "
            "! tar -xzf \"$mycli_tmp/lc.tgz\" -C \"$MYCLI_LOCAL_CHANGES\"; then",
            "  mycli_not_started 'the local changes could not be downloaded'",
            "fi",
        ]
    if request.skip_git:
        lines.append("echo '→ Mode: direct command execution (git cloning skipped)'")
    else:
        lines += clone_lines(request, WORKDIR, hosts)  # applies $MYCLI_LOCAL_CHANGES in the clone
    lines += [
        "unset MYCLI_GITHUB_TOKEN MYCLI_GITLAB_TOKEN MYCLI_SSH_PRIVATE_KEY MYCLI_GIT_USER MYCLI_GIT_PASSWORD",
        # a user's image may run as another user: the clone and the outputs directory are theirs to
        # write (the task's own volume), the inputs theirs to read (as the local engine extracts them)
        f"chmod a+rwx {INPUTS} {OUTPUTS} && chmod -R a+rX {INPUTS} && chmod -R a+rwX {WORKDIR} 2>/dev/null",
        "# shellcheck disable=SC2016,SC1003  # a script, written as it is",
        f"if ! {{ printf '%s' {sh_quote(executor)} > {RUN_SCRIPT}.new && mv {RUN_SCRIPT}.new {RUN_SCRIPT}; }}; then",
        "  mycli_not_started 'the command could not be handed to the executor'",
        "fi",
        "exit 0",
    ]
    return "\n".join(lines) + "\n"


def executor_script(request: ExecRequest) -> str:
    """What the executor runs from the volume: the command in the clone (or the work dir),
    with the watchdog; nothing but /bin/sh builtins, `sleep`, `kill` and `mkdir`."""
    workdir = WORKDIR if request.skip_git else f"{WORKDIR}/repo"
    lines = [
        "#!/bin/sh",
        "set -u",
        *not_started_lines(),
        *temp_dir_lines(),
        *signal_trap_lines(),
        *stop_lines(),
        f"cd {sh_quote(workdir)} || mycli_not_started 'no working directory'",
        f"MYCLI_INPUTS={INPUTS}",
        f"MYCLI_OUTPUTS={OUTPUTS}",
        "export MYCLI_INPUTS MYCLI_OUTPUTS",
    ]
    return "\n".join(lines + command_lines(request, watchdog=True)) + "\n"


def stop_lines() -> list[str]:
    """The executor's stop: ECS's SIGTERM reaches only the script (the init process hands it to
    its child), so the script passes it on to the command, SIGKILLs it after the grace (a command
    that ignores SIGTERM), says so and exits 143 — well within the executor's stopTimeout. The
    EXIT trap tells publish the executor is done, whatever ended it (a SIGKILL excepted: then
    publish learns it from its own SIGTERM)."""
    return [
        f"trap 'rm -rf \"$mycli_tmp\"; true 2>/dev/null > {EXECUTOR_DONE}' EXIT",
        "mycli_pid=''",
        "# shellcheck disable=SC2317  # run by the TERM trap",
        "mycli_stop() {",
        "  trap '' TERM",
        "  if [ -n \"$mycli_pid\" ]; then",
        "    kill -TERM \"$mycli_pid\" 2>/dev/null",
        f"    ( sleep {STOP_GRACE_SECONDS}; kill -KILL \"$mycli_pid\" 2>/dev/null ) &",
        "    wait \"$mycli_pid\"",
        "    echo",
        "    printf '%s\\n' \"$mycli_rule\" '✗ Stopped' \"$mycli_rule\"",
        "  fi",
        "  exit 143",
        "}",
        "trap mycli_stop TERM",
    ]


def publish_script(max_files: int = 10_000) -> str:
    """The publish container's script (the task definition's command). From its environment:
    MYCLI_EXECUTION_ID, the S3 URL and region, and the caps MYCLI_MAX_ARTIFACT_MB (one file,
    default 100) and MYCLI_MAX_ARTIFACTS_MB (the run, default 1024); 0 turns a cap off."""
    lines = [
        "#!/bin/sh",
        "set -u",
        "mycli_cap() { case $1 in '' | *[!0-9]*) echo \"$2\" ;; 0) echo 4611686018427387904 ;; *) echo $(($1 * 1048576)) ;; esac; }",
        "mycli_file_mb=${MYCLI_MAX_ARTIFACT_MB:-100}",
        "mycli_run_mb=${MYCLI_MAX_ARTIFACTS_MB:-1024}",
        "mycli_file_cap=$(mycli_cap \"$mycli_file_mb\" 104857600)",
        "mycli_run_cap=$(mycli_cap \"$mycli_run_mb\" 1073741824)",
        # SIGTERM comes once the executor has stopped (ECS stops it first) or the task is ending:
        # noted, never fatal, so an upload under way finishes
        "mycli_term=''",
        "trap 'mycli_term=${mycli_term:-$(date +%s)}' TERM",
        f"mkdir -p {DONE_DIR} && chmod 1777 {DONE_DIR}",
        *_tools("curl sha256sum", "curl coreutils"),
        *s3_lines(),
        *files_and_size_lines(),
        "mycli_tmp=$(mktemp -d) || exit 1",
        "trap 'rm -rf \"$mycli_tmp\"' EXIT",
        *executor_state_lines(),
        f"mycli_every=${{MYCLI_PUBLISH_WATCH_SECONDS:-{WATCH_SECONDS}}}",
        "mycli_next=0",
        "mycli_gone=''",
        f"while [ ! -e {EXECUTOR_DONE} ] && [ -z \"$mycli_term\" ]; do",
        "  if [ \"$(date +%s)\" -ge \"$mycli_next\" ]; then",
        "    mycli_next=$(($(date +%s) + mycli_every))",
        "    mycli_state=$(mycli_executor_state) || mycli_state=''",
        "    case $mycli_state in STOPPED*) mycli_gone=$mycli_state; break ;; esac",
        "  fi",
        "  sleep 1 & wait $!",
        "done",
        "[ -z \"$mycli_term\" ] || echo '→ Stopped: publishing what the command wrote before it stopped'",
        f"if [ -n \"$mycli_gone\" ] && [ ! -e {EXECUTOR_DONE} ]; then",
        "  mycli_code=${mycli_gone#STOPPED}; mycli_code=${mycli_code# }",
        "  if [ -n \"$mycli_code\" ]; then",
        "    echo \"✗ The command's container ended before its script did (exit code $mycli_code; 137 is a SIGKILL, often the memory limit): publishing what the command wrote\"",
        "  else",
        "    echo \"✗ The command's container stopped without running (its image could not start it, or the fetch container did not start): publishing what is there\"",
        "  fi",
        "fi",
        f"mycli_budget=${{MYCLI_PUBLISH_STOP_BUDGET:-{STOP_BUDGET_SECONDS}}}",
        "mycli_late() { [ -n \"$mycli_term\" ] && [ $(($(date +%s) - mycli_term)) -ge \"$mycli_budget\" ]; }",
        "mycli_pre=\"artifacts/$MYCLI_EXECUTION_ID\"",
        ": > \"$mycli_tmp/manifest\"",
        "mycli_n=0",
        "mycli_total=0",
        "mycli_skip() { printf 'S\\t%s\\n' \"$1\" >> \"$mycli_tmp/manifest\"; echo \"→ Skipped $1\"; }",
        "mycli_one() {",
        "  mycli_name=${1#./}",
        "  case $mycli_name in",
        "    *[[:cntrl:]]* | *\\\\*) mycli_skip 'a file: not a usable name (control characters or a backslash)'; return ;;",
        "  esac",
        "  if [ \"${#mycli_name}\" -gt 1024 ]; then mycli_skip 'a file: not a usable name (too long)'; return; fi",
        "  if [ -L \"$1\" ]; then mycli_skip \"$mycli_name: symbolic link, not a regular file\"; return; fi",
        "  if [ ! -f \"$1\" ]; then mycli_skip \"$mycli_name: not a regular file\"; return; fi",
        f"  if [ \"$mycli_n\" -ge {max_files} ]; then mycli_skip \"$mycli_name: over {max_files:,} files\"; return; fi",
        "  mycli_size=$(wc -c < \"$1\" | tr -d ' ') || { mycli_skip \"$mycli_name: cannot be read\"; return; }",
        "  if [ \"$mycli_size\" -gt \"$mycli_file_cap\" ]; then",
        "    mycli_skip \"$mycli_name: $mycli_size bytes, over the per-file cap of $mycli_file_mb MiB\"; return",
        "  fi",
        "  if [ $((mycli_total + mycli_size)) -gt \"$mycli_run_cap\" ]; then",
        "    mycli_skip \"$mycli_name: $mycli_size bytes would exceed the per-run cap of $mycli_run_mb MiB\"; return",
        "  fi",
        "  if mycli_late; then mycli_skip \"$mycli_name: not uploaded, the stop left no time\"; return; fi",
        "  mycli_sha=$(sha256sum < \"$1\" | cut -c1-64)",
        "  mycli_n=$((mycli_n + 1))",
        "  if ! mycli_s3 PUT \"$mycli_pre/files/$mycli_n\" \"$1\" \"$mycli_sha\" >/dev/null; then",
        "    mycli_skip \"$mycli_name: the upload failed\"; return",
        "  fi",
        "  mycli_total=$((mycli_total + mycli_size))",
        "  printf 'F\\t%s\\t%s\\t%s\\t%s\\n' \"$mycli_n\" \"$mycli_size\" \"$mycli_sha\" \"$mycli_name\" >> \"$mycli_tmp/manifest\"",
        "}",
        # Globs list every name (hidden ones too) whatever bytes it holds; only real directories
        # are entered, so a link is never followed. The executor's script has exited (or the
        # executor has stopped): nothing changes here.
        "mycli_walk() {",
        "  for mycli_f in \"$1\"/* \"$1\"/.[!.]* \"$1\"/..?*; do",
        "    [ -e \"$mycli_f\" ] || [ -L \"$mycli_f\" ] || continue",
        "    if [ -d \"$mycli_f\" ] && [ ! -L \"$mycli_f\" ]; then mycli_walk \"$mycli_f\"; else mycli_one \"$mycli_f\"; fi",
        "  done",
        "}",
        f"if [ -d {OUTPUTS} ] && [ ! -L {OUTPUTS} ] && cd {OUTPUTS}; then",
        "  mycli_walk .",
        "else",
        "  mycli_skip 'the outputs directory is missing (the fetch did not finish or the command removed it); nothing collected'",
        "fi",
        "echo \"→ Artifacts: $(mycli_files_and_size \"$mycli_n\" \"$mycli_total\")\"",
        "mycli_sha=$(sha256sum < \"$mycli_tmp/manifest\" | cut -c1-64)",
        f"if ! mycli_s3 PUT \"$mycli_pre/{MANIFEST_NAME}\" \"$mycli_tmp/manifest\" \"$mycli_sha\" >/dev/null; then",
        "  echo '✗ The artifacts could not be published (no manifest uploaded)' >&2",
        "  exit 1",
        "fi",
    ]
    return "\n".join(lines) + "\n"
