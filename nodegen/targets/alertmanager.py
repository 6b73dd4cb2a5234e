"""Alertmanager's config (Phase MONITOR) on nodes that run it: routes by severity and node role,
inhibition, receivers whose secrets come from .env.

Alertmanager does not expand environment variables, and 0.25 reads a webhook URL from a file only for
Slack-compatible receivers (`api_url_file`). Compose writes each receiver's .env value to /run/secrets/
(see the catalog's `file: true`), so this file names paths, never a URL or token. The native Telegram
receiver reads its token from a file (`bot_token_file`) from Alertmanager 0.26 on (the pinned image).
Generic webhooks (fleet alert_webhooks) keep their URL in the manifest and send a bearer token read from
a file (`http_config.authorization.credentials_file`, which 0.25 has): the webhook's `url_file` is newer.
"""

from __future__ import annotations

from nodegen.load.model import Standard
from nodegen.record import record
from nodegen.standard import ALERTMANAGER, ALERTMANAGER_RECEIVER_ENV, TELEGRAM_TOKEN_ENV, webhook_token_env
from nodegen.targets.alerts import uptime_matchers
from nodegen.templating import template
from nodegen.view.resolve import NodeView

PATH = "infra/alertmanager/alertmanager.yml"
SECRETS_DIR = "/run/secrets"


@record
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
TELEGRAM_TOKEN_FILE = f"{SECRETS_DIR}/{TELEGRAM_TOKEN_ENV.lower()}"


@record
class Webhook:
    """A generic webhook (fleet alert_webhooks): its URL is no secret, its bearer token is a file."""

    name: str
    url: str

    @property
    def token_file(self) -> str:
        return f"{SECRETS_DIR}/{webhook_token_env(self.name).lower()}"


def render(view: NodeView) -> dict[str, str]:
    if view.service(ALERTMANAGER) is None:
        return {}
    webhooks = tuple(Webhook(name, url) for name, url in view.alert_webhooks)
    return {PATH: template("alertmanager.yml.j2", v=view, page=PAGE, notify=NOTIFY, receivers=RECEIVERS,
                           telegram_chat_id=view.telegram_chat_id, telegram_token_file=TELEGRAM_TOKEN_FILE,
                           webhooks=webhooks, quiet_roles=quiet_roles(view.standard),
                           always_on=_always_on(view.standard))}


def quiet_roles(std: Standard) -> tuple[str, ...]:
    """Roles whose critical alerts never page: a dev node is somebody's workbench."""
    return tuple(sorted(name for name, role in std.roles.items() if role.dev))


def _always_on(std: Standard) -> str | None:
    matchers = uptime_matchers(std)
    return matchers[0] if matchers else None
