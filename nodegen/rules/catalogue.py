"""The catalogue of rule ids: each problem nodegen reports names one of these."""

from __future__ import annotations

RULES: dict[str, str] = {
    "file": "a manifest exists, is a regular file inside the workspace and is small enough to read",
    "yaml": "a manifest is valid UTF-8 YAML 1.2 with unique keys, no custom tags and bounded size",
    "schema": "keys and value types match the manifest format (unknown keys get a did-you-mean hint)",
    "vocabulary": "a service's class and a node's role and uptime are names the fleet's standard declares",
    "port-class": "a port lies in its service class's range; well-known core ports belong to core services",
    "port-conflict": "no two services of a node share a port; a port belongs to one catalog service",
    "name-format": "names are lowercase ASCII and derived names (containers, volumes, labels) do not collide",
    "health-endpoint": "every service has a health check; services we build answer GET /health",
    "metrics-endpoint": "services we build expose GET /metrics for Prometheus",
    "public-port": "only the gateway publishes host ports; others may bind loopback only, explicitly",
    "unknown-dependency": "a dependency runs on the same node or is used from a node that runs it",
    "dependency-cycle": "the dependency graph of a node has no cycles",
    "secret-literal": "secrets never have a value in a manifest; credential-looking values are rejected",
    "route": "API routes and websocket channels are URL-safe, unique per node and cannot inject syntax",
    "node-distribution": "services a node lists exist in the catalog; uses name nodes that run the service",
    "image": "images are pinned to a version tag (never latest); exactly one of image or build",
    "cluster": "cluster settings fit the service: one replica for data services and the gateway",
    "cluster-image": "with a cluster target, a service Compose builds names a pushed image (cluster.image)",
    "swarm-name": "Swarm object names derived from project, node and service fit Swarm's 63-character limit",
    "swarm-publish": "what a node publishes can be expressed in Swarm without opening it on every address",
    "value-syntax": "values rendered into nginx, YAML or shell cannot inject syntax",
    "visibility": "routes are public, fleet-only or absent as declared; admin networks are real networks",
    "postgres-role": "a service connects to PostgreSQL as its own role: nodegen fills in its URL, user and "
    "password; role and database names are plain identifiers",
    "target-version": "the tool versions in target_versions can run what is rendered (Compose 2.23.1+ for "
    "Synapse's inline config)",
    "client-identity": "only configured load balancers may set the client address (X-Forwarded-For)",
}

# Findings about output/ and the real tools' verdicts (check, verify, audit NODE), and unreadable import sources.
OUTPUT_RULES: dict[str, str] = {
    "output-drift": "output/ holds exactly what the manifests render (no stale, missing or extra file)",
    "hand-edit": "a generated file is not edited by hand; the change belongs in the manifest key that produces it",
    "verify": "the rendered files pass the real tools: Docker Compose, nginx -t, promtool, amtool, shellcheck",
    "checklist": "an item of the standard's Compliance Checklist holds for the node as it would be deployed",
    # The sources of `nodegen import`, when they cannot be read at all.
    "compose-config": "a compose file `nodegen import` reads is accepted by Docker Compose (`config`)",
    "nginx-syntax": "an nginx config `nodegen import` reads parses (crossplane)",
}


def all_rules() -> dict[str, str]:
    """Every rule id nodegen can report, with its one-line description (manifests, compose files,
    migrations, output)."""
    from nodegen.migrations import RULES as MIGRATION_RULES
    from nodegen.rules.compose import RULES as COMPOSE_RULES

    return {**RULES, **COMPOSE_RULES, **MIGRATION_RULES, **OUTPUT_RULES}
