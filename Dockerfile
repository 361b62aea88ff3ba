# gitsync: one process, one SQLite file, the git repository. No JVM, no git binary needed.
# One image for both roles: `gitsync daemon` (the default command) and `gitsync worker` (Celery, scale-out).
#   docker build -t gitsync .
#   docker run -p 8080:8080 -v "$PWD:/repo:ro" -v gitsync-data:/data -e GITSYNC_API_TOKEN=... gitsync
# examples/docker-compose.yml runs it on the bundled examples (and with Redis and two workers: profile celery).
FROM python:3.11-slim-bookworm

# Extras installed with gitsync (comma separated): celery for the worker role; add e.g. redis,ansible,serdes,dbt.
ARG EXTRAS=celery
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="gitsync" \
      org.opencontainers.image.description="GitOps for Kestra-format flows: synced from git, scheduled, run, reported as commit statuses" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0"

# GITSYNC_* variables override gitsync.yaml: listen on every interface of the container (so reads need the API
# token too, see the README), keep the state and the git caches in the data volume.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GITSYNC_HTTP_LISTEN=0.0.0.0:8080 \
    GITSYNC_DB=/data/gitsync.db \
    GITSYNC_DATA_DIR=/data/cache

# openssh-client: ssh:// sources and git Clone over ssh (dulwich runs the ssh command). Not pinned: the
# slim base's security updates should reach it at each build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-client \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 gitsync \
    && useradd --uid 10001 --gid gitsync --create-home --shell /usr/sbin/nologin gitsync \
    && mkdir -p /data /repo \
    && chown gitsync:gitsync /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gitsync ./gitsync
COPY runner ./runner
COPY plugins ./plugins
# The project itself, from its source folder (its dependencies' ranges are pyproject.toml's).
# hadolint ignore=DL3013
RUN pip install ".[${EXTRAS}]"

# The default configuration: serve the repository mounted at /repo (its flows at the root).
COPY examples/docker/gitsync.yaml /etc/gitsync/gitsync.yaml

# Numeric, so that a runtime refusing root (Kubernetes runAsNonRoot) can check it.
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

# /healthz answers without a token (200 ok, 503 degraded); the port follows GITSYNC_HTTP_LISTEN. No curl needed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as r; port = os.environ.get('GITSYNC_HTTP_LISTEN', ':8080').rpartition(':')[2]; sys.exit(0 if r.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["gitsync"]
CMD ["daemon", "--config", "/etc/gitsync/gitsync.yaml"]
