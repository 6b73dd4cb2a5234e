"""`nodegen explain RULE`: what a rule checks, the section of the standard it enforces, and a fixed example."""

from __future__ import annotations

import difflib
import re

from nodegen.load.yamlio import parse
from nodegen.presets import shipped_fleet
from nodegen.record import record
from nodegen.rules.catalogue import all_rules


@record
class Example:
    """A change to the shipped fleet that breaks the rule, and the problem nodegen then reports."""

    file: str
    before: str
    after: str
    problem: str  # the message as printed after `path:line:col: `; {at:a.b.c} and {line:a.b.c} are positions in F


@record
class Explanation:
    standard: str
    fix: str
    example: Example | str  # a replayable manifest change, or (compose files, migrations, output) an input


F, N1, N2 = "nodes/fleet.yaml", "nodes/node1.yaml", "nodes/node2.yaml"
PLACE = re.compile(r"\{(at|line):([a-z0-9_.-]+)\}")  # a position in the shipped fleet, looked up when printed

EXPLANATIONS: dict[str, Explanation] = {
    "file": Explanation("— (nodegen's input)", "keep one manifest per node, a regular file inside the workspace",
                        "nodes/node1.yaml and nodes/node1.yml side by side: "
                        "error[file] node1.yaml and node1.yml both exist; keep one"),
    "yaml": Explanation("— (nodegen's input)", "each key once; plain YAML 1.2, no custom tags or merge keys",
                        Example(F, "    port: 7002\n", "    port: 7002\n    port: 7003\n",
                                "error[yaml] duplicate key 'port' (first defined at line "
                                "{line:services.agents-service.port})")),
    "schema": Explanation("— (the manifest format, docs/manifests.md)", "use a key and value the format knows; "
                          "the hint names the closest one",
                          Example(F, "    protocol: tcp\n", "    protocol: tpc\n", "error[schema] "
                                  "services.postgres.protocol: input should be 'http', 'http+ws' or 'tcp'; "
                                  "did you mean 'tcp'?")),
    "vocabulary": Explanation(
        "Node Roles (production, dev + backup, federation), the port classes of Стандартні Порти; the words "
        "are the fleet's own (standard.classes, roles, uptimes)",
        "use a name the fleet's standard declares, or declare it there",
        Example(N2, "role: dev", "role: devl", "error[vocabulary] role 'devl' is not in standard.roles "
                "(production, dev, federation); did you mean 'dev'?")),
    "port-class": Explanation(
        "Стандартні Порти: «Порти 7000-7999 — MVP services, 8000-8999 — Utilities/Multimodal, 9000-9999 — DAGI "
        "Stack», and the Core Infrastructure table", "a port of the class's range: nodegen ports --next mvp",
        Example(F, "    port: 7002\n", "    port: 9555\n",
                "error[port-class] agents-service: port 9555 is outside the mvp range 7000-7999")),
    "port-conflict": Explanation(
        "Стандартні Порти; Consistency First (однакова структура портів)", "take the next free port the message names",
        Example(F, "    port: 7002\n", "    port: 7001\n",
                "error[port-conflict] agents-service: port 7001 is already used by city-service "
                "(nodes/fleet.yaml:{at:services.city-service.port}); the next free mvp port is 7007 "
                "(nodegen ports --next mvp)")),
    "name-format": Explanation(
        "Docker Standards → Naming Convention (<project>-<service>, <project>_net, <service>_data), Labels",
        "lowercase ASCII names", Example(F, "project: daarion", "project: DAARION",
                                         "error[name-format] project 'DAARION' must be lowercase ASCII letters and "
                                         "digits (2-31)")),
    "health-endpoint": Explanation(
        "Health Check Standards: GET /health on every service, the Docker healthcheck block",
        "a probe that exists in the image; services we build answer GET /health",
        Example(F, '      command: [sh, -c, "redis-cli ping | grep -q PONG"]\n', "      command: []\n",
                "error[health-endpoint] redis: a tcp service needs health.command (a probe that exists in its "
                "image)")),
    "metrics-endpoint": Explanation(
        "Metrics Standards: GET /metrics in the Prometheus text format", "serve /metrics and leave metrics on",
        Example(F, "    route: agents\n", "    route: agents\n    metrics: {enabled: false}\n",
                "error[metrics-endpoint] agents-service: services we build expose GET /metrics")),
    "public-port": Explanation(
        "Security Standards → Network Isolation: «Тільки gateway має публічні порти»",
        "bind 127.0.0.1 (an SSH tunnel), or route it through the gateway",
        Example(N1, 'publish: ["127.0.0.1:3000"]', 'publish: ["0.0.0.0:3000"]',
                "error[public-port] grafana: only the gateway publishes ports; '0.0.0.0:3000' must bind a "
                "loopback address")),
    "unknown-dependency": Explanation(
        "Multi-Node Standards → Cross-Node Communication", "run each dependency on the node, or use it from one",
        Example(F, "needs: [postgres, nats, router]", "needs: [postgres, nats, ruter]",
                "error[unknown-dependency] agents-service needs 'ruter', which is not in the catalog; "
                "did you mean 'router'?")),
    "dependency-cycle": Explanation(
        "— (a cycle never starts: each service waits for the other)", "one of them must start without the other",
        Example(F, "needs: [postgres, nats, router]", "needs: [postgres, nats, router, agents-service]",
                "error[dependency-cycle] agents-service needs itself")),
    "secret-literal": Explanation(
        "Security Standards → Secrets Management: «НЕ В GIT: .env файли з паролями … API tokens»",
        "declare {secret: true, description: …}; the value lives in the host's .env only",
        Example(F, "      POSTGRES_USER: postgres\n", "      POSTGRES_USER: postgres\n      API_TOKEN: abc123secret\n",
                "error[secret-literal] postgres: API_TOKEN looks like a secret; write {secret: true} and set it in "
                ".env (or {secret: false, value: ...} for a setting)")),
    "route": Explanation(
        "API Routing Standards: https://<domain>/api/<service>/<endpoint>, wss://<domain>/ws/<service>/<channel>",
        "lowercase and URL-safe, unique per node",
        Example(F, "    route: agents\n", "    route: Agents\n",
                "error[route] agents-service: route 'Agents' must be lowercase ASCII letters, digits and '-'")),
    "node-distribution": Explanation(
        "Multi-Node Standards → Service Distribution (node roles and their services)",
        "list gateway-nginx once on every node, and only catalog services",
        Example(N1, "  - gateway-nginx\n", "",
                "error[node-distribution] node1: a node runs exactly one gateway service, not 0")),
    "image": Explanation(
        "Docker Standards; Git as Source of Truth, Rollback Ready (a deploy must be repeatable)",
        "pin a version tag or a digest", Example(F, "image: nats:2.15.2-alpine", "image: nats:latest",
                                                "error[image] nats: image 'nats:latest' must be pinned to a version "
                                                "tag, never latest")),
    "value-syntax": Explanation(
        "Security Standards: values that reach nginx, YAML or shell cannot inject syntax",
        "plain DNS names, addresses and paths",
        Example(N1, "domain: gateway.daarion.city", 'domain: "gateway.daarion.city;"',
                "error[value-syntax] domain 'gateway.daarion.city;' is not a lowercase DNS name")),
    "visibility": Explanation(
        "Security Standards → Network Isolation (only the gateway is public; internal stays internal)",
        "visibility: public only for routes the internet must reach; fleet for peers and admin_networks",
        Example(N1, "  - postgres\n", "  - {postgres: {visibility: public}}\n",
                "error[visibility] postgres: visibility public needs a route in the catalog")),
    "postgres-role": Explanation(
        "Security Standards: least privilege; each service reaches only its own data",
        "write {postgres: url|user|password} alone; nodegen fills in the role and .env holds its password",
        Example(F, "      DATA_SOURCE_PASS: {postgres: password}\n",
                "      DATA_SOURCE_PASS: {postgres: password, secret: true}\n",
                "error[postgres-role] postgres-exporter: DATA_SOURCE_PASS is filled in from the service's own "
                "PostgreSQL role; drop secret")),
    "target-version": Explanation(
        "Docker Standards: the node runs the compose file it is given",
        "raise target_versions.compose to 2.23.1 or later (configs: content:), or run Synapse elsewhere",
        Example(F, "domain: daarion.city\n", "domain: daarion.city\ntarget_versions: {compose: \"2.20\"}\n",
                "error[target-version] Compose 2.20 cannot run node3: Synapse's configuration is an inline config "
                "(configs: content:), which needs Compose 2.23.1 or later")),
    "client-identity": Explanation(
        "Rate Limiting (per client); Phase SCALE (a load balancer before the nodes)",
        "list only your load balancers' own addresses, each no wider than /8",
        Example(N1, "address: 10.0.0.1\n", "address: 10.0.0.1\ngateway: {load_balancers: [0.0.0.0/1]}\n",
                "error[client-identity] load balancer '0.0.0.0/1' is wider than /8: it would trust most of the "
                "internet")),
    "cluster": Explanation(
        "Phase SCALE (horizontal scaling): only stateless services scale out",
        "keep replicas 1 on data services and the gateway; scale the services in front of them",
        Example(F, "    image: postgres:15.20-alpine\n",
                "    image: postgres:15.20-alpine\n    cluster: {replicas: 2}\n",
                "error[cluster] postgres: a service with a data volume runs one replica "
                "(two would share /var/lib/postgresql/data)")),
    "cluster-image": Explanation(
        "Docker Standards (pinned images); Phase SCALE (docs/scale.md): a cluster engine cannot build",
        "push the image from CI and give it as cluster.image, pinned to a version tag",
        Example(F, "    cluster: {image: registry.daarion.city/router:1.0.0}  # pushed by CI; the Swarm target "
                "cannot build\n", "",
                "error[cluster-image] router: Swarm cannot build 'services/router'; give cluster.image, "
                "the pushed and pinned image of this service")),
    "swarm-name": Explanation(
        "Docker Standards → Naming Convention; Swarm's 63-character service names",
        "shorten the project, node or service name",
        "a 31-letter project with node1 and a 32-letter service: error[swarm-name] <service>: Swarm service "
        "'<project>_node1-<service>' is longer than 63 characters"),
    "swarm-publish": Explanation(
        "Security Standards → Network Isolation (only the gateway publishes)",
        "use the service via: gateway while the fleet lists the Swarm target",
        Example(N1, "  web-search: node2\n", "  web-search: {node: node2, via: private}\n",
                "error[swarm-publish] web-search: via: private publishes on node2's private address, which "
                "Swarm cannot bind alone; use via: gateway for the Swarm target")),
    "compose-version": Explanation("Docker Standards (Compose v2 calls the key obsolete)", "delete the version: line",
                                   'a compose file that starts with version: "3.8"'),
    "image-minimum": Explanation("Security Standards; docs/decisions.md (the minimum patch release of each image)",
                                 "pin the current patch release (nodes/fleet.yaml, images:)",
                                 "a compose file that runs redis:7.4.1-alpine (before the Lua fix in 7.4.6)"),
    "restart-policy": Explanation("Rollback Ready, Observable by Default", "restart: unless-stopped",
                                  "a compose service without restart: (or with restart: \"no\")"),
    "log-rotation": Explanation("Logging Standards", 'logging: {driver: json-file, options: {max-size: 10m, '
                                'max-file: "3"}}', "a compose service without logging:, or json-file without "
                                "max-size and max-file"),
    "labels": Explanation("Docker Standards → Labels", "add com.<project>.service, .tier and .phase",
                          "a compose service without the com.<project>.* labels"),
    "gateway-tls": Explanation("Security Standards; Compliance Checklist (Nginx/Gateway з SSL)",
                               "one gateway that publishes 443 with TLS",
                               "a compose file whose nginx publishes 80 only"),
    "migration-name": Explanation("Database Standards → Migrations: «Naming: XXX_description.sql»",
                                  "rename to 006_create_presence.sql", "migrations/6_Create-Presence.sql"),
    "migration-sequence": Explanation("Database Standards → Migrations", "number them 001, 002, 003 … without gaps",
                                      "migrations 002 and 005 with nothing between"),
    "migration-header": Explanation("Database Standards → Migrations (the header block of the example)",
                                    "-- Date: 2025-11-25, and every header line filled in",
                                    "-- Date: 25.11.2025 in a migration's header"),
    "migration-transaction": Explanation("Database Standards → Migrations (BEGIN; … COMMIT;)",
                                         "one transaction: BEGIN; first, COMMIT; last, none between",
                                         "a COMMIT; in the middle of a migration"),
    "migration-rollback": Explanation("Database Standards → Migrations («-- Rollback: See NNN_rollback.sql»)",
                                      "write NNN_rollback.sql for every migration",
                                      "008_add_rooms.sql without 008_rollback.sql"),
    "output-drift": Explanation("Git as Source of Truth (output/ is committed and reviewed as a diff)",
                                "nodegen render --all; commit manifests and output/ together",
                                "a manifest changed and output/ not rendered"),
    "hand-edit": Explanation("Git as Source of Truth (the manifests are the source)",
                             "make the change in the manifest key the message names, or drop it with render --force",
                             "a line of output/node1/docker-compose.all.yml changed by hand"),
    "verify": Explanation("Compliance Checklist (the real tools accept the files)",
                          "read the tool's message; with --strict install every tool", "nginx -t rejecting nginx.conf"),
    "checklist": Explanation("Compliance Checklist", "fix what the item's evidence names",
                             "a .gitignore that does not ignore output/node1/.env"),
    "compose-config": Explanation("Docker Compose with all services (the file Compose itself runs)",
                                  "make `docker compose -f FILE config` accept the file, then import it",
                                  "a service key Compose does not know (additional properties not allowed)"),
    "nginx-syntax": Explanation("Nginx/Gateway (the hand-written config the import reads)",
                                "make `nginx -t` accept the file, then import it",
                                "a proxy_pass line without its closing semicolon"),
}


def explain(rule: str) -> str | None:
    """The text `nodegen explain RULE` prints, or None for an unknown rule."""
    rules = all_rules()
    if rule not in rules or rule not in EXPLANATIONS:
        return None
    item = EXPLANATIONS[rule]
    lines = [f"{rule}: {rules[rule]}", f"standard: {item.standard}"]
    if isinstance(item.example, Example):
        ex = item.example
        lines += [f"example: in the shipped fleet's {ex.file}, change", *_block(ex.before),
                  "to", *_block(ex.after or "(nothing)"), "and nodegen validate reports",
                  f"  {ex.file}:…: {problem_text(ex)}"]
    else:
        lines.append(f"example: {item.example}")
    lines.append(f"fix: {item.fix}")
    return "\n".join(lines)


def problem_text(ex: Example) -> str:
    """The example's message with the positions it names looked up in the shipped fleet, so they never go stale."""
    if not PLACE.search(ex.problem):
        return ex.problem
    doc, _ = parse(shipped_fleet(), F)
    assert doc is not None, "the shipped fleet parses"

    def where(match: re.Match[str]) -> str:
        loc = tuple(match[2].split("."))
        assert loc in doc.values, f"explain example names {match[2]}, which the shipped fleet does not have"
        line, col = doc.values[loc]
        return f"{line}:{col}" if match[1] == "at" else str(line)

    return PLACE.sub(where, ex.problem)


def _block(text: str) -> list[str]:
    return [f"    {line}" for line in text.rstrip("\n").splitlines()]


def did_you_mean(rule: str) -> str:
    close = difflib.get_close_matches(rule, sorted(all_rules()), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""
