"""mycli orchestrator: what the Lambda zip holds.

Core (validation, auth, shell builder, ids) is pure; engines (local, ecs) and fronts (Lambda
handler, local HTTP server) sit around it. Imports only the standard library, boto3/botocore and
bcrypt.
"""

__version__ = "0.1.0"
