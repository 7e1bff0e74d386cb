"""The sign-in record: one row per event, with address and browser, never changed or removed."""

from __future__ import annotations

import pytest
from django.test import Client

from dispatch.accounts.models import AppendOnly, SignInEvent, SignInKind

from .conftest import OFFICE, sign_in, user_with

pytestmark = pytest.mark.django_db


def test_sign_in_failure_and_sign_out_are_recorded_with_address_and_browser():
    user = user_with("dispatcher", "riley")
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (Macintosh) Safari/605")

    sign_in(client, "riley", "not-it")
    sign_in(client, "riley")
    client.post("/admin/logout/", REMOTE_ADDR=OFFICE)
    sign_in(client, "nobody-here", "guess")

    rows = list(SignInEvent.objects.order_by("id"))
    assert [(r.kind, r.username, r.user_id) for r in rows] == [
        (SignInKind.FAILED, "riley", None),
        (SignInKind.SIGNED_IN, "riley", user.pk),
        (SignInKind.SIGNED_OUT, "riley", user.pk),
        (SignInKind.FAILED, "nobody-here", None),
    ]
    assert {r.address for r in rows} == {OFFICE}
    assert {r.user_agent for r in rows} == {"Mozilla/5.0 (Macintosh) Safari/605"}
    assert rows[0].path == "/admin/login/"


def test_the_address_behind_a_trusted_proxy_is_the_one_recorded(settings):
    settings.DISPATCH_TRUSTED_PROXY_COUNT = 1
    user_with("dispatcher", "riley")

    Client().post(
        "/admin/login/",
        {"username": "riley", "password": "x"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.44",
    )

    assert SignInEvent.objects.get().address == "192.0.2.44"


def test_rows_cannot_be_changed_or_removed():
    sign_in(Client(), "riley", "wrong")
    row = SignInEvent.objects.get()

    row.username = "someone-else"
    with pytest.raises(AppendOnly):
        row.save()
    with pytest.raises(AppendOnly):
        row.delete()
    with pytest.raises(AppendOnly):
        SignInEvent.objects.filter(pk=row.pk).update(username="x")
    with pytest.raises(AppendOnly):
        SignInEvent.objects.all().delete()
    assert SignInEvent.objects.get().username == "riley"


def test_admins_and_auditors_read_the_record_and_nobody_edits_it():
    sign_in(Client(), "riley", "wrong")
    row = SignInEvent.objects.get()
    for role in ("admin", "audit"):
        reader = Client()
        reader.force_login(user_with(role))
        listing = reader.get("/admin/accounts/signinevent/")
        assert listing.status_code == 200 and "riley" in listing.content.decode()
        assert reader.get(f"/admin/accounts/signinevent/{row.pk}/change/").status_code == 200
        assert reader.get("/admin/accounts/signinevent/add/").status_code == 403
        assert reader.post(f"/admin/accounts/signinevent/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    for role in ("dispatcher", "finance", "qa"):
        other = Client()
        other.force_login(user_with(role))
        assert other.get("/admin/accounts/signinevent/").status_code == 403
    assert SignInEvent.objects.filter(kind=SignInKind.FAILED).count() == 1
