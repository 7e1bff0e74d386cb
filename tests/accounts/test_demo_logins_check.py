"""Production refuses to serve while a demo login keeps its published password."""

from __future__ import annotations

import importlib.util

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from dispatch.demo.checks import CHECK_ID, demo_logins_check
from tests.common.test_settings import manage_under_production
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


def test_the_production_server_refuses_to_start_with_a_demo_login():
    UserFactory(username="qa", password="qa-demo")
    spec = importlib.util.spec_from_file_location("gunicorn_conf", settings.BASE_DIR / "config" / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)

    with pytest.raises(SystemCheckError, match=CHECK_ID):
        conf.on_starting(server=None)


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
