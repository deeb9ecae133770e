"""Deploying to AWS and connecting to a deployment: what `mycli init/destroy/doctor/configure` and
`%mycli init/destroy/doctor/configure` share, so the two fronts cannot drift apart.

`deploy.py` is the init flow (and where a deployed stack is, for `configure` and `server --engine
aws`); `destroy.py` removes a stack; `doctor.py` (with `doctor_checks.py` and `doctor_services.py`)
checks one part by part; `stack.py` talks to CloudFormation; `lambda_package.py` builds the orchestrator's zip;
`git_credentials.py` reads the tokens and keys a stack is given; `configure_flow.py` saves an
endpoint and key, given or discovered from a stack.

May import: boto3 (inside functions, so start-up stays fast), `orchestrator` (to hash keys and
package its code) and the shared client modules. Never a front (`mycli_magic.cli`,
`mycli_magic.notebook`): both fronts call this package, it calls neither.
"""
