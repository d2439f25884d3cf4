# One image for web, worker and beat; docker-compose.yml picks the process with `command`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    NOC_ENV=production \
    NOC_EMBEDDED=off \
    STATIC_ROOT=/app/staticfiles

# Dependencies first, in their own layer: exactly the hash-pinned versions of requirements.lock,
# wheels only (the slim image has no compiler). The lock includes the dev tools; that is accepted.
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock

RUN groupadd --system --gid 10001 noc \
    && useradd --system --uid 10001 --gid noc --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin noc

WORKDIR /app
COPY . /app

# Production settings refuse to load without SECRET_KEY, DATABASE_URL and REDIS_URL. The dummy
# values below exist for this RUN only (collectstatic touches neither database nor Redis) and
# are not part of the image's environment.
RUN SECRET_KEY=build-only-collectstatic \
    DATABASE_URL=postgres://build@localhost:5432/build \
    REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q /app \
    && mkdir -p /app/var \
    && chown noc:noc /app/var

USER noc
EXPOSE 8000

CMD ["uvicorn", "noc.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--workers", "2", "--loop", "uvloop", "--http", "httptools", \
     "--timeout-graceful-shutdown", "10"]
