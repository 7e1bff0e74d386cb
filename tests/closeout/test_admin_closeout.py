"""The closeout records show in the admin read-only; only the price book is edited there."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory

import dispatch.closeout.admin_closeout  # noqa: F401  (registers the classes, as closeout/admin.py does)
from dispatch.closeout.models import AutonomyPause, CloseoutPacket, Evidence, Invoice, PriceBookItem

pytestmark = pytest.mark.django_db


def test_records_are_registered_read_only_and_the_price_book_is_editable(django_user_model):
    superuser = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    request = RequestFactory().get("/admin/")
    request.user = superuser
    for model in (Evidence, Invoice, CloseoutPacket, AutonomyPause):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
    closeout_admins = [a for m, a in admin.site._registry.items() if m._meta.app_label == "closeout"]
    assert len(closeout_admins) >= 11
    assert [error for model_admin in closeout_admins for error in model_admin.check()] == []
    price_book = admin.site._registry[PriceBookItem]
    assert price_book.has_add_permission(request) and price_book.has_change_permission(request)
