"""An import-linter contract type import-linter lacks: an allow-list of external packages.

A `forbidden` contract names what may not be imported, so a new dependency slips through
unnoticed. The Lambda zip holds only the orchestrator, boto3/botocore and bcrypt, so the rule is
the other way round: the standard library and the listed packages, nothing else.
"""

from __future__ import annotations

import sys

from importlinter import Contract, ContractCheck, fields, output


class AllowedExternalContract(Contract):
    """source_modules (and their descendants) import only the stdlib, the root packages' own
    modules permitted by other contracts, and the `allowed` top-level packages."""

    type_name = "allowed_external"

    source_modules = fields.ListField(subfield=fields.ModuleField())
    allowed = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        allowed = set(self.allowed) | set(sys.stdlib_module_names) | {"__future__"}
        roots = {m.name.split(".")[0] for m in self.source_modules} | {"mycli_magic", "orchestrator"}
        sources: set[str] = set()
        for module in self.source_modules:
            sources |= {module.name} | graph.find_descendants(module.name)
        violations = []
        for source in sorted(sources):
            for imported in sorted(graph.find_modules_directly_imported_by(source)):
                top = imported.split(".")[0]
                if top in roots or top in allowed:
                    continue
                lines = sorted(d["line_number"] for d in graph.get_import_details(importer=source, imported=imported))
                violations.append({"importer": source, "imported": imported, "lines": lines})
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for v in check.metadata["violations"]:
            where = ", ".join(f"l.{n}" for n in v["lines"])
            output.print_error(f"{v['importer']} imports {v['imported']} ({where}), which is not allowed here")
            output.new_line()
