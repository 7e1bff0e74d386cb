"""Factories for the shared schema. Tickets made here go through the executor, like real ones."""
from __future__ import annotations

import uuid

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from dispatch.common.actors import Actor, ActorType
from dispatch.common.roles import Role
from dispatch.technicians.models import Region, Technician, TechnicianSkill
from dispatch.tickets.models import Account, Asset, Contact, Site


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Harbor Properties {n}")


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Building {n}")
    address_line1 = factory.Sequence(lambda n: f"{100 + n} Harbor Way")
    city = "Oakland"
    region = "CA"
    postal_code = "94607"
    lat = "37.804400"
    lng = "-122.271100"
    service_region = "EAST_BAY"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Pat Rivera {n}")
    phone = factory.Sequence(lambda n: f"+1510555{n:04d}")
    email = factory.Sequence(lambda n: f"pat{n}@example.com")


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asset

    site = factory.SubFactory(SiteFactory)
    name = "Front entrance door"
    make = "Stanley"
    model = "Dura-Glide 2000"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if not create or not extracted:
            return
        role = Role(extracted)
        self.groups.add(Group.objects.get_or_create(name=role.value)[0])
        self.is_staff = role not in (Role.TECHNICIAN, Role.AGENT, Role.CUSTOMER, Role.SYSTEM)
        self.save()


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ("code",)

    code = "EAST_BAY"
    name = "East Bay"


class TechnicianFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Technician
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory, role="technician")
    display_name = factory.Sequence(lambda n: f"Dana Tech{n}")
    phone = factory.Sequence(lambda n: f"+1415555{n:04d}")
    home_lat = "37.804400"
    home_lng = "-122.271100"

    @factory.post_generation
    def skills(self, create, extracted, **kwargs):
        if not create:
            return
        for incident_type in extracted or ["DOOR_WONT_LATCH"]:
            TechnicianSkill.objects.create(technician=self, incident_type=incident_type, level=3)

    @factory.post_generation
    def region_codes(self, create, extracted, **kwargs):
        if not create:
            return
        for code in extracted or ["EAST_BAY"]:
            self.regions.add(RegionFactory(code=code, name=code.replace("_", " ").title()))


def actor_for(role: str | Role = Role.DISPATCHER, *, actor_id: str | None = None, technician=None, **kwargs) -> Actor:
    role = Role(role)
    return Actor(
        actor_type=kwargs.pop("actor_type", ActorType.AGENT if role == Role.AGENT else ActorType.HUMAN),
        actor_id=actor_id or (str(technician.user_id) if technician else f"{role.value}-{uuid.uuid4().hex[:6]}"),
        role=role,
        technician_id=technician.id if technician else None,
        request_id=str(uuid.uuid4()),
        **kwargs,
    )


def ticket_new(*, site=None, actor=None, summary="Front door won't latch", **fields):
    """A NEW ticket created through the executor (so it has its creation audit event)."""
    from dispatch.tickets.services import ticket_create

    site = site or SiteFactory()
    return ticket_create(
        actor=actor or actor_for(Role.DISPATCHER), account_id=site.account_id, site_id=site.id, summary=summary, **fields
    ).ticket
