"""Engines: where a script runs, behind the one contract in `orchestrator/engine.py`.

`local*` runs it as a process (or in docker/podman) with executions and logs in SQLite;
`ecs*` runs it on Fargate, with logs from CloudWatch and records in DynamoDB. Engines import the
core (`orchestrator.engine`, `errors`, `shell`, `ids`), the standard library and botocore; the
core never imports an engine module except through `orchestrator.api`'s factory.
"""
