"""Production refuses to serve while a demo login keeps its published password."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from dispatch.demo.checks import CHECK_ID, demo_logins_check
from tests.common.test_settings import manage_under_production, production_env
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_demo_login_with_its_demo_password_is_an_error():
    UserFactory(username="dispatcher", password="dispatcher-demo")
    UserFactory(username="tech.dana", password="technician-demo")
    UserFactory(username="finance", password="changed-after-the-demo-1")

    errors = demo_logins_check(databases=["default"])

    assert [e.id for e in errors] == [CHECK_ID]
    assert "dispatcher, tech.dana" in errors[0].msg and "finance" not in errors[0].msg


def test_changed_or_deactivated_demo_logins_pass():
    UserFactory(username="dispatcher", password="a-new-strong-passphrase")
    UserFactory(username="admin", password="admin-demo", is_active=False)

    assert demo_logins_check(databases=["default"]) == []


def test_the_check_reads_no_database_unless_asked():
    UserFactory(username="dispatcher", password="dispatcher-demo")

    assert demo_logins_check(databases=None) == []


def test_the_production_server_refuses_to_start_with_a_demo_login(tmp_path):
    # A real production database (SQLite file), a demo login in it, and gunicorn's start hook.
    database = str(tmp_path / "production.sqlite3")
    assert manage_under_production("migrate", "--noinput", SQLITE_PATH=database).returncode == 0
    create = "from django.contrib.auth.models import User; User.objects.create_user('qa', password='qa-demo')"
    assert manage_under_production("shell", "-c", create, SQLITE_PATH=database).returncode == 0
    hook = "import runpy; runpy.run_path('config/gunicorn.conf.py')['on_starting'](None)"

    def start():
        return subprocess.run(
            [sys.executable, "-c", hook],
            cwd=settings.BASE_DIR,
            env=production_env(SQLITE_PATH=database),
            capture_output=True,
            text=True,
            timeout=120,
        )

    refused = start()
    assert refused.returncode != 0
    assert "Refusing to serve" in refused.stderr and CHECK_ID in refused.stderr and "qa" in refused.stderr

    change = "from django.contrib.auth.models import User; u = User.objects.get(username='qa'); u.set_password('a-long-new-passphrase-7'); u.save()"
    assert manage_under_production("shell", "-c", change, SQLITE_PATH=database).returncode == 0
    assert start().returncode == 0


def test_deploy_check_with_the_database_names_it():
    UserFactory(username="approver", password="approver-demo")
    with pytest.raises(SystemCheckError, match="approver"):
        call_command("check", "--deploy", "--database", "default", "--fail-level", "ERROR")


def test_production_settings_require_two_factor_and_keep_the_validators():
    finished = manage_under_production(
        "shell",
        "-c",
        "from django.conf import settings as s; "
        "print(s.DISPATCH_TWO_FACTOR_REQUIRED, len(s.AUTH_PASSWORD_VALIDATORS), s.AXES_FAILURE_LIMIT)",
    )

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip().splitlines()[-1].split() == ["True", "4", "5"]
