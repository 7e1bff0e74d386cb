"""Technicians: who they are, what they can fix, and where they work."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Region(models.Model):
    """A service area; sites name the region they are in by its code."""

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Technician(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="technician")
    display_name = models.CharField(max_length=100)
    phone = models.CharField("phone (E.164)", max_length=20, blank=True)
    regions = models.ManyToManyField(Region, blank=True, related_name="technicians")
    home_lat = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    home_lng = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def first_name(self) -> str:
        return self.display_name.split()[0] if self.display_name else ""


class TechnicianSkill(models.Model):
    """An incident type a technician can handle, with a level from 1 (learning) to 5 (expert)."""

    technician = models.ForeignKey(Technician, on_delete=models.CASCADE, related_name="skills")
    incident_type = models.CharField(max_length=64)
    level = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(5)])

    class Meta:
        ordering = ["incident_type"]
        constraints = [
            models.UniqueConstraint(fields=["technician", "incident_type"], name="skill_unique_per_technician")
        ]

    def __str__(self) -> str:
        return f"{self.incident_type} (level {self.level})"
