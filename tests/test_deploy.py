"""Deployment settings and the API schema stay clean."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.smoke
def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        HISTOCROWD_PRODUCTION="true",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60),
        DJANGO_ALLOWED_HOSTS="histo.example.org",
        HISTOCROWD_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env.update(HISTOCROWD_PRODUCTION="true", HISTOCROWD_VAR_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_bad_environment_value_stops_start_up_with_its_name(tmp_path):
    env = dict(os.environ, SLIDE_UPLOAD_MAX_BYTES="lots", HISTOCROWD_VAR_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "SLIDE_UPLOAD_MAX_BYTES" in result.stderr


@pytest.mark.smoke
def test_openapi_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/slides/{id}/crop/" in (tmp_path / "schema.yaml").read_text()


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A production host's environment: the test run's own CELERY_* tuning removed."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CELERY_")
        and k not in ("DJANGO_SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(
        HISTOCROWD_PRODUCTION="true",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60),
        DJANGO_ALLOWED_HOSTS="histo.example.org",
        HISTOCROWD_VAR_DIR=str(tmp_path),
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        **extra,
    )
    return env


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_takes_its_secret_key_from_the_environment_and_writes_none(tmp_path):
    env = _production_env(tmp_path)
    result = _python(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SECRET_KEY)",
        env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == env["DJANGO_SECRET_KEY"]
    assert not (tmp_path / "secret-key").exists()


def test_production_celery_settings_give_the_reliability_guarantees(tmp_path):
    code = (
        "import json, django; django.setup(); from config.celery import app; c = app.conf; "
        "print(json.dumps({k: c[k] for k in ('task_acks_late', 'task_reject_on_worker_lost', "
        "'worker_prefetch_multiplier', 'task_time_limit', 'task_serializer', "
        "'broker_transport_options')}))"
    )
    result = _python(code, _production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    conf = json.loads(result.stdout)
    assert conf["task_acks_late"] is True and conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_serializer"] == "json"
    visibility = conf["broker_transport_options"]["visibility_timeout"]
    assert visibility == 3600 and conf["task_time_limit"] < visibility
    assert "global_keyprefix" not in conf["broker_transport_options"]


def test_a_task_time_limit_not_below_the_visibility_timeout_stops_start_up(tmp_path):
    env = _production_env(tmp_path, CELERY_VISIBILITY_TIMEOUT="600", CELERY_TASK_TIME_LIMIT="600")
    result = _python("import django; django.setup()", env)
    assert result.returncode != 0 and "CELERY_TASK_TIME_LIMIT" in result.stderr


def test_shipped_redis_config_persists_every_write_and_never_evicts():
    lines = (REPO / "deploy" / "redis.conf").read_text().splitlines()
    options = dict(
        line.split(None, 1) for line in lines if line.strip() and not line.startswith("#")
    )
    assert options["appendonly"] == "yes"
    assert options["appendfsync"] in ("everysec", "always")
    assert options["maxmemory-policy"] == "noeviction"
    assert "requirepass" not in options  # the password comes from the environment
