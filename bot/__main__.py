"""`python -m bot` runs the evalbot CLI."""

from bot.cli import app

if __name__ == "__main__":  # a spawned worker process (parsing, read-ahead) imports this module as __mp_main__
    app(prog_name="evalbot")
