"""Bolt listeners: each module has `register(app, deps)` and parses one kind of payload.

`events` (flag reaction, @mention), `shortcuts` (the message shortcut), `commands` (the slash command table),
`run_commands` (`/eval run`, `/eval status`), `actions` (buttons) and `views` (modal submissions).
`home` (App Home: app_home_opened and its paging) and `followup_commands` (`/eval mute`, `/eval unmute`).
"""
