"""Settings come from the environment, with safe defaults and loud mistakes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STRONG_KEY = "k3y-" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP"


def run_manage(*args, **env):
    clean = {
        name: value
        for name, value in os.environ.items()
        if name not in {"SECRET_KEY", "DEBUG", "HTTPS", "DATABASE_URL", "REDIS_URL"}
    }
    clean["SECRET_KEY_FILE"] = "/nonexistent/.secret_key"
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", HTTPS="true")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_refuses_a_weak_secret_key():
    result = run_manage("check", HTTPS="true", SECRET_KEY="django-insecure-short")
    assert result.returncode != 0
    assert "too weak for production" in result.stderr


def test_production_settings_pass_the_deployment_check():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        HTTPS="true",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="carecodes.example",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("name", "value"), [("DEBUG", "maybe"), ("HTTPS", "sometimes")]
)
def test_a_mistyped_switch_fails_loudly(name, value):
    result = run_manage("check", SECRET_KEY=STRONG_KEY, **{name: value})
    assert result.returncode != 0
    assert f"{name} must be true or false" in result.stderr


def test_debug_is_off_unless_asked_for():
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        SECRET_KEY=STRONG_KEY,
    )
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_redis_becomes_the_cache_when_configured():
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.CACHES['default']['BACKEND'])",
        SECRET_KEY=STRONG_KEY,
        REDIS_URL="redis://127.0.0.1:6379/15",
    )
    assert result.stdout.strip().splitlines()[-1] == ("django_redis.cache.RedisCache")
