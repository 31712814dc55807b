"""Webhook receivers: ToDesktop (`todesktop.py`) and GitHub (`github.py`)."""
