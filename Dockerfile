# syntax=docker/dockerfile:1
# Build stage: resolve the locked dependencies into a virtual environment.
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY bot ./bot
RUN uv sync --frozen --no-dev

# Runtime stage: the venv, the code and git (the corpus is a git work tree); runs as a non-root user.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 evalbot
WORKDIR /app
COPY --from=build /app /app
COPY corpus /app/corpus-example
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 EVALBOT_CORPUS_DIR=/data/corpus
RUN mkdir -p /data && chown evalbot /data
USER evalbot
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD python -c "import sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=3).status == 200 else 1)" || exit 1
CMD ["evalbot", "serve"]
