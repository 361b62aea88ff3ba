# gitsync: one process, one SQLite file, the git repository. No JVM, no git binary needed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

RUN useradd --create-home --uid 10001 gitsync
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gitsync ./gitsync
COPY runner ./runner
COPY plugins ./plugins
RUN pip install .

USER gitsync
WORKDIR /home/gitsync
VOLUME ["/home/gitsync/data"]
EXPOSE 8080
ENTRYPOINT ["gitsync"]
CMD ["daemon", "--config", "/home/gitsync/gitsync.yaml"]
