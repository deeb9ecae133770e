"""mycli orchestrator: what the Lambda zip holds, and what the embedded engine runs locally.

Core (validation, auth, shell builder, ids, `api.App`) is pure; `engines/` (local, ecs) and the
fronts (the Lambda `handler`, the local HTTP `server`) sit around it. Imports only the standard
library, boto3/botocore and bcrypt, and never the client (`mycli_magic`) — checked by
import-linter (pyproject.toml, tests/test_layout.py).
"""

__version__ = "0.1.0"
