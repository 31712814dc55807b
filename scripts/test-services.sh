#!/usr/bin/env bash
# Make sure the servers the tests use are up: PostgreSQL and Redis on loopback, and that
# chromium + chromedriver (the admin's browser tests) are installed.
# Start them when they are installed but down; install them from Debian's packages when absent.
# Never skip: if one cannot be had, fail loudly. (The S3 server is started by the tests.)
set -euo pipefail

PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_PORT=6379

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" "$2" && return 0; sleep 0.5; done
  echo "test-services: nothing answers on $1:$2" >&2; return 1
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  echo "test-services: installing $* from Debian's packages"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  if port_open $PG_HOST $PG_PORT; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
  fi
  local version; version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "test-services: starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port $PG_HOST $PG_PORT
  # A fresh Debian cluster wants a password over TCP; give the tests' user the one they use.
  as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null 2>&1 || true
}

ensure_redis() {
  if port_open 127.0.0.1 $REDIS_PORT; then return 0; fi
  command -v redis-server >/dev/null || apt_install redis-server
  echo "test-services: starting Redis"
  mkdir -p /tmp/redis-tests
  redis-server --daemonize yes --bind 127.0.0.1 --port $REDIS_PORT --save "" \
    --appendonly no --dir /tmp/redis-tests --logfile /tmp/redis-tests/redis.log
  wait_port 127.0.0.1 $REDIS_PORT
}

# The admin's browser tests drive Debian's chromium through its chromedriver (selenium).
ensure_chromium() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then return 0; fi
  apt_install chromium chromium-driver
}

# The bench harness's test starts nginx, the comparison every figure of docs/budgets.md is
# measured against (the daemon is never left running: the test starts and stops its own).
ensure_nginx() {
  command -v nginx >/dev/null || apt_install nginx
}

ensure_postgres
ensure_redis
# `make test-fast` runs no browser test: `--no-browser` leaves chromium alone.
if [ "${1:-}" = --no-browser ]; then
  echo "test-services: PostgreSQL on $PG_HOST:$PG_PORT and Redis on 127.0.0.1:$REDIS_PORT are up"
  exit 0
fi
ensure_chromium
ensure_nginx
echo "test-services: PostgreSQL on $PG_HOST:$PG_PORT and Redis on 127.0.0.1:$REDIS_PORT are up;" \
  "chromium, chromedriver and nginx are installed"
