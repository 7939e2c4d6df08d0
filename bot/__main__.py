"""`python -m bot` runs the evalbot CLI."""

from bot.cli import app

app(prog_name="evalbot")
