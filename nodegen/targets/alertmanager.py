"""Alertmanager's config (Phase MONITOR) on nodes that run it: routes by severity, receivers from .env.

Alertmanager does not expand environment variables, and 0.25 reads a webhook URL from a file only for
Slack-compatible receivers (`api_url_file`). Compose writes each receiver's .env value to /run/secrets/
(see the catalog's `file: true`), so this file names paths, never a URL or token.
"""

from __future__ import annotations

from dataclasses import dataclass

from nodegen.standard import ALERTMANAGER, ALERTMANAGER_RECEIVER_ENV
from nodegen.templating import template
from nodegen.view.resolve import NodeView

PATH = "infra/alertmanager/alertmanager.yml"
SECRETS_DIR = "/run/secrets"


@dataclass(frozen=True)
class Receiver:
    """A notification target and the .env variable holding its incoming-webhook URL."""

    name: str
    env: str
    purpose: str

    @property
    def url_file(self) -> str:
        return f"{SECRETS_DIR}/{self.env.lower()}"


PAGE = Receiver("page", ALERTMANAGER_RECEIVER_ENV[0], "critical alerts of always-on nodes")
NOTIFY = Receiver("notify", ALERTMANAGER_RECEIVER_ENV[1], "warnings, and anything not routed elsewhere")
RECEIVERS = (PAGE, NOTIFY)


def render(view: NodeView) -> dict[str, str]:
    if view.service(ALERTMANAGER) is None:
        return {}
    return {PATH: template("alertmanager.yml.j2", v=view, page=PAGE, notify=NOTIFY, receivers=RECEIVERS)}
