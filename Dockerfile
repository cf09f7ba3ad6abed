# One image for every Keel process: the worker (default), the two MCP servers, the codec
# server and the simulator. docker-compose.yml picks the process with `command:`. No key
# material is ever copied in (.keel/ is outside the build context): compose mounts the keys
# as secrets at run time (docs/security.md).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KEEL_PROFILES_PATH=/app/profiles

# A fixed, unprivileged user. /data is created here, owned by that user, so a named volume
# mounted on it (the support desk's SQLite file) starts out writable. /store is the content
# store's volume (docker-compose.yml): the worker and the CLI write it as the host user
# (KEEL_UID), so it is open to any user like /tmp (sticky; the blobs are encrypted).
RUN groupadd --system --gid 10001 keel \
    && useradd --system --uid 10001 --gid keel --home-dir /app --no-create-home keel \
    && mkdir -p /app /data /store \
    && chown keel:keel /data \
    && chmod 1777 /store

WORKDIR /app

# Project metadata first, then every top-level package and module the processes import
# (the worker imports keel, workflows and activities; the servers run from mcp_servers and
# simulator). profiles/ is plain data, not a package: it is copied, not installed.
COPY pyproject.toml README.md ./
COPY keel ./keel
COPY workflows ./workflows
COPY activities ./activities
COPY mcp_servers ./mcp_servers
COPY simulator ./simulator
COPY worker.py ./worker.py
COPY profiles ./profiles

# The base dependencies (all the MCP servers need) plus the `runtime` extra (the worker, the
# simulator, the temporal CLI of the worker's healthcheck); no dev extras. An image for the
# servers alone could install just `.` (see docs/operations.md). The code stays owned by
# root: the processes only read it.
RUN pip install --no-cache-dir .[runtime]

USER keel

CMD ["python", "worker.py"]
