"""App Home: `app_home_opened` publishes the person's home tab (`views.publish`), and its paging buttons re-publish it.

The adapter reads the user, checks whether they are a maintainer, loads `bot.digest.home.load_home` and renders
`bot.slack.blocks.home.home_view`. The triage queue's [Promote…] [Reject…] are the capture card's buttons, so the
listeners in `actions` open the same modals.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.core.errors import PermissionDeniedError
from bot.digest.home import load_home
from bot.runtime import Runtime
from bot.slack.blocks import home as hb
from bot.slack.deps import SlackDeps
from bot.slack.flows.notify import digest_permalink
from bot.slack.flows.permissions import Maintainers
from bot.slack.flows.triage_ops import ops_for
from bot.slack.listeners import bind
from bot.store.tables import session_scope


def is_maintainer(maintainers: Maintainers, user_id: str) -> bool:
    """True when `user_id` may triage (anyone, without EVALBOT_MAINTAINERS)."""
    try:
        maintainers.require(user_id)
    except PermissionDeniedError:
        return False
    return True


def publish_home(client: WebClient, runtime: Runtime, maintainers: Maintainers, *, user_id: str, flags_page: int = 1,
                 queue_page: int = 1) -> dict[str, Any]:
    """Build and publish `user_id`'s App Home; returns the view published."""
    maintainer = is_maintainer(maintainers, user_id)
    with session_scope(runtime.engine) as session:
        home = load_home(session, runtime.corpus, user_id=user_id, maintainer=maintainer, flags_page=flags_page,
                         queue_page=queue_page)
    link = digest_permalink(client, runtime.settings.channel, home.last_run.digest_ts if home.last_run else None)
    view = hb.home_view(home, digest_link=link, command=runtime.settings.slash_command)
    client.views_publish(user_id=user_id, view=view)
    return view


def on_home_opened(event: dict[str, Any], client: WebClient, *, deps: SlackDeps, maintainers: Maintainers) -> None:
    """Publish the home tab of the person who opened it."""
    if event.get("tab", "home") != "home":
        return
    publish_home(client, deps.runtime, maintainers, user_id=event["user"])


def on_home_page(ack: Ack, body: dict[str, Any], client: WebClient, *, deps: SlackDeps, maintainers: Maintainers) -> None:
    """Re-publish the clicker's home tab at the pages the button names."""
    ack()
    flags, queue = hb.parse_page_value((body.get("actions") or [{}])[0].get("value"))
    publish_home(client, deps.runtime, maintainers, user_id=body["user"]["id"], flags_page=flags, queue_page=queue)


def register(app: App, deps: SlackDeps) -> None:
    """Attach the App Home listeners."""
    maintainers = ops_for(app, deps).maintainers
    app.event("app_home_opened")(bind(on_home_opened, deps=deps, maintainers=maintainers))
    app.action(re.compile(f"^{hb.PAGE_ACTION}"))(bind(on_home_page, deps=deps, maintainers=maintainers))
