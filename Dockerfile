# syntax=docker/dockerfile:1
# Build stage: resolve the locked dependencies (no dev/bench groups) into a virtual environment. The dependency
# layer is built from pyproject.toml and uv.lock alone, so editing README.md or bot/ does not rebuild it.
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY bot ./bot
RUN uv sync --frozen --no-dev --no-editable

# Runtime stage: the venv, git (the corpus is a git work tree) and nothing else; runs as a non-root user.
# Everything it writes (SQLite database, corpus clone) goes to EVALBOT_DATA_DIR; /app stays read-only.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 evalbot \
    && mkdir -p /data && chown evalbot /data
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY corpus /app/corpus-example
COPY deploy /app/deploy
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    EVALBOT_DATA_DIR=/data EVALBOT_EXAMPLE_CORPUS=/app/corpus-example EVALBOT_PORT=3000
USER evalbot
VOLUME ["/data"]
EXPOSE 3000
# /readyz (database reachable, corpus present) is served on EVALBOT_PORT in both transports (Socket Mode and HTTP).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('EVALBOT_PORT', '3000'), timeout=3).status != 200)"]
CMD ["evalbot", "serve"]
