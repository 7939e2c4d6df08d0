"""Bolt listeners: each module has `register(app, deps)` and parses one kind of payload.

`events` (flag reaction, @mention), `shortcuts` (the message shortcut), `commands` (the slash command table),
`run_commands` (`/eval run`, `/eval status`), `actions` (buttons) and `views` (modal submissions).
`home` (App Home: app_home_opened and its paging) and `followup_commands` (`/eval mute`, `/eval unmute`).

Every listener is a named module-level function: what Bolt injects (`ack`, `body`, `client`, …) comes first, what
`register` binds (`deps`, `ops`, …) is keyword-only, so a test imports one and calls it with its own values.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")


def bind(listener: Callable[..., R], /, *, name: str | None = None, **bound: Any) -> Callable[..., R]:
    """`listener` with its keyword-only arguments bound, as Bolt sees a listener.

    Bolt reads the argument names to inject from the function behind `__wrapped__`, so the bound ones (keyword-only)
    are not asked of it; `name` renames it (Bolt tells a listener's lazy functions apart by name).
    """
    wrapper = functools.update_wrapper(functools.partial(listener, **bound), listener)
    if name is not None:
        wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper
