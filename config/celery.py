"""The Celery app; its configuration lives in config/celeryconfig.py, loaded lazily."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("histocrowd")
# A string is loaded on first use of app.conf, after Django's settings are importable; importing
# settings here would run while the config package itself is still initialising.
app.config_from_object("config.celeryconfig")
app.autodiscover_tasks()
