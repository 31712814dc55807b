"""gunicorn settings shared by `make run` and the container (`gunicorn -c` this file).

Measured on 2 cores (bench/feed.py): 2 worker processes × 4 threads with SO_REUSEPORT gave the
best manifest throughput and p99; without reuse_port, p99 was about 3× worse. Override any of
these with GUNICORN_CMD_ARGS (gunicorn reads it natively), e.g. `--workers 4`.
"""

from __future__ import annotations

import os

bind = f"{os.environ.get('BIND_ADDRESS', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
reuse_port = True
keepalive = 75  # electron-updater and browsers reuse connections
# Downloads stream for a long time; a worker is only killed when it stops responding.
timeout = 120
graceful_timeout = 30
control_socket_disable = True  # instances side by side must not share one per-user socket
accesslog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
