"""One module per subcommand. COMMANDS is the explicit registry: command name -> module.

Each module defines `command`, a click command. The CLI imports a module only when its command
runs (or help lists it), so `nodegen check` does not pay for what `nodegen verify` imports.
"""

from __future__ import annotations

COMMANDS: dict[str, str] = {
    "validate": "nodegen.commands.validate",
    "nodes": "nodegen.commands.nodes",
    "schema": "nodegen.commands.schema",
    "render": "nodegen.commands.render",
    "check": "nodegen.commands.check",
    "diff": "nodegen.commands.diff",
    "verify": "nodegen.commands.verify",
    "ports": "nodegen.commands.ports",
    "graph": "nodegen.commands.graph",
    "lint-migrations": "nodegen.commands.lint_migrations",
    "audit": "nodegen.commands.audit",
    "explain": "nodegen.commands.explain",
    "init": "nodegen.commands.init",
    "import": "nodegen.commands.import_",
}
