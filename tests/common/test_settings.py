"""The production settings module: refuses to start half-configured, passes `check --deploy`."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from django.conf import settings

PRODUCTION_SECRET_KEY = secrets.token_urlsafe(64)


def production_env(**env_changes: str | None) -> dict[str, str]:
    """This process's environment as a production server would have it, with the given changes."""
    env = {
        key: value
        for key, value in os.environ.items()
        # DJANGO_ALLOW_ASYNC_UNSAFE is set by the browser tests in this process, never in production.
        if key
        not in {
            "DATABASE_URL",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DEBUG",
            "DISPATCH_DEV_AUTH",
            "DISPATCH_AUDIT_CHAIN_KEY",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=PRODUCTION_SECRET_KEY,
        ALLOWED_HOSTS="example.com",
    )
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def manage_under_production(*args: str, **env_changes: str | None) -> subprocess.CompletedProcess:
    """Runs manage.py in a fresh process with the production settings and only the given variables."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=production_env(**env_changes),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_no_issue_under_production_settings():
    finished = manage_under_production("check", "--deploy", "--fail-level", "DEBUG")

    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "System check identified no issues (0 silenced)." in finished.stdout
    assert "WARNING" not in finished.stdout + finished.stderr


def test_production_refuses_to_start_without_a_secret_key():
    finished = manage_under_production("check", SECRET_KEY=None)

    assert finished.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set in production." in finished.stderr


def test_production_refuses_to_start_with_an_empty_secret_key():
    finished = manage_under_production("check", SECRET_KEY="")

    assert finished.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set in production." in finished.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    finished = manage_under_production("check", ALLOWED_HOSTS=None)

    assert finished.returncode != 0
    assert "ImproperlyConfigured: ALLOWED_HOSTS must be set in production" in finished.stderr


def test_production_keeps_debug_and_development_actor_headers_off_whatever_the_environment_says():
    finished = manage_under_production(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; "
        "print(settings.DEBUG, settings.DISPATCH_DEV_AUTH, settings.ALLOWED_HOSTS, "
        "settings.SECRET_KEY == settings.DISPATCH_AUDIT_CHAIN_KEY)",
        DEBUG="1",
        DISPATCH_DEV_AUTH="1",
        ALLOWED_HOSTS="dispatch.example.com, ops.example.com",
    )

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "False False ['dispatch.example.com', 'ops.example.com'] True"


def test_production_keeps_a_separate_audit_chain_key_when_one_is_given():
    finished = manage_under_production(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.DISPATCH_AUDIT_CHAIN_KEY)",
        DISPATCH_AUDIT_CHAIN_KEY="chain-key-kept-apart-from-the-secret-key",
    )

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "chain-key-kept-apart-from-the-secret-key"
