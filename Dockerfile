# Threadline's image: `docker build -t threadline .` (compose.yaml and deploy/kubernetes/ use it).
# Stage 1 builds wheels of the bot and of every dependency at the versions of constraints.txt; stage 2
# installs them, offline, into a slim image that runs the bot as a non-root user. tests/process/test_deploy.py
# lints this file with hadolint and installs the bot as stage 2 does into a fresh venv, then starts it.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY bot ./bot
COPY handlers ./handlers
COPY sandbox ./sandbox
RUN pip wheel --no-cache-dir --wheel-dir /wheels --constraint constraints.txt .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PORT=3000
RUN groupadd --system --gid 10001 threadline \
    && useradd --system --uid 10001 --gid threadline --home-dir /app --create-home --shell /usr/sbin/nologin threadline
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels /wheels/threadline-*.whl \
    && rm -rf /wheels
WORKDIR /app
USER 10001:10001
EXPOSE ${PORT}
# Liveness only: /readyz (Slack, the model server, Redis) is for the orchestrator's readiness checks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]
# Exec form, no shell in between: `docker stop` (SIGTERM) reaches the bot itself, which stops taking
# questions, lets answers finish for BOT_SHUTDOWN_GRACE_SECONDS and exits 0. Give it longer than that
# (docker stop -t, compose's stop_grace_period, Kubernetes' terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
CMD ["threadline"]
