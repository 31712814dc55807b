# syntax=docker/dockerfile:1
# Multi-stage: wheels are built in the first stage; the runtime image has no compiler and runs
# as a non-root user.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements.txt .
RUN python -m venv /venv && /venv/bin/pip install -r requirements.txt

FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=selfhosted.settings \
    DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles \
    PORT=8000 \
    BIND_ADDRESS=0.0.0.0 \
    WEB_CONCURRENCY=2 \
    SECURE_COOKIES=true \
    SECURE_HSTS_SECONDS=31536000
RUN groupadd --system app && useradd --system --gid app --home-dir /app --no-create-home app \
    && mkdir -p /data && chown app:app /data
COPY --from=build /venv /venv
WORKDIR /app
COPY --chown=app:app . .
# collectstatic needs settings only: a throwaway key, no database.
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput --verbosity 0
USER app
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s \
    CMD python -c "import os,urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=8)"
# The default command is the web process; workers and beat override it (docker-compose.yml).
CMD ["gunicorn", "-c", "selfhosted/gunicorn.conf.py", "selfhosted.wsgi"]
