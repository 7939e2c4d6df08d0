"""Who may promote, reject and edit: EVALBOT_MAINTAINERS user ids, and members of its user groups (S…).

Group members come from `usergroups.users.list` and are cached for `ttl` seconds. When Slack cannot be asked,
a stale list is used if there is one; otherwise the check fails closed with a message saying why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.errors import PermissionDeniedError
from bot.triage import decisions as triage

log = logging.getLogger(__name__)

TTL_S = 300.0


class Maintainers:
    """The maintainer check for Slack users, resolving user groups through the Web API (cached)."""

    def __init__(self, ids: Sequence[str], client: WebClient, *, ttl: float = TTL_S,
                 clock: Callable[[], float] = time.monotonic):
        self.users = frozenset(i for i in ids if not i.startswith("S"))
        self.groups = tuple(dict.fromkeys(i for i in ids if i.startswith("S")))
        self.client = client
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    @property
    def restricted(self) -> bool:
        """False when EVALBOT_MAINTAINERS is empty: anyone may triage."""
        return bool(self.users or self.groups)

    def who(self) -> str:
        """Who can, as Slack mentions: '<@U1>, <@U2> or members of <!subteam^S1>'."""
        people = [f"<@{u}>" for u in sorted(self.users)]
        groups = [f"<!subteam^{g}>" for g in self.groups]
        if groups:
            people.append("members of " + ", ".join(groups))
        return " or ".join([", ".join(people[:-1]), people[-1]] if len(people) > 1 else people)

    def require(self, user_id: str) -> None:
        """Raise PermissionDeniedError (naming who can) unless `user_id` is a maintainer."""
        if not self.restricted or user_id in self.users:
            return
        allowed = set(self.users)
        for group in self.groups:
            members = self._members(group)
            if user_id in members:
                return
            allowed |= members
        triage.require_maintainer(user_id, allowed_users=allowed, who=self.who())

    def _members(self, group: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(group)
        if cached and cached[0] > now:
            return cached[1]
        try:
            users = frozenset(self.client.usergroups_users_list(usergroup=group).get("users") or [])
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown_error")
            if cached:
                log.warning("could not refresh user group %s (%s); using the list from before", group, error)
                return cached[1]
            hint = " (the app needs the usergroups:read scope)" if error == "missing_scope" else ""
            raise PermissionDeniedError(
                f"I could not check who is in <!subteam^{group}> (Slack said {error}){hint}, so I cannot tell "
                f"whether you are a maintainer. Ask an admin to check EVALBOT_MAINTAINERS."
            ) from None
        with self._lock:
            self._cache[group] = (now + self.ttl, users)
        return users
