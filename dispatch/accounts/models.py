"""The sign-in record: who signed in, out, failed, was locked out or passed the second factor.

Append-only and apart from the ticket audit chain: a row is written once and never changed or
removed (the model and its queryset refuse both), so an intruder with a stolen password cannot
tidy up behind them through the application.
"""

from __future__ import annotations

from django.db import models


class SignInKind(models.TextChoices):
    SIGNED_IN = "SIGNED_IN", "Signed in"
    SIGNED_OUT = "SIGNED_OUT", "Signed out"
    FAILED = "FAILED", "Wrong username or password"
    LOCKED = "LOCKED", "Locked after repeated failures"
    REFUSED_LOCKED = "REFUSED_LOCKED", "Refused: locked"
    UNLOCKED = "UNLOCKED", "Unlocked by staff"
    TWO_FACTOR_PASSED = "TWO_FACTOR_PASSED", "Second factor passed"
    TWO_FACTOR_FAILED = "TWO_FACTOR_FAILED", "Second factor refused"
    TWO_FACTOR_ENROLLED = "TWO_FACTOR_ENROLLED", "Two-factor set up"
    TWO_FACTOR_RESET = "TWO_FACTOR_RESET", "Two-factor reset"
    RECOVERY_CODES_ISSUED = "RECOVERY_CODES_ISSUED", "New recovery codes"


class AppendOnly(Exception):
    """A sign-in record row was asked to change or go away."""


class SignInEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("The sign-in record is append-only.")

    def delete(self):
        raise AppendOnly("The sign-in record is append-only.")


class SignInEvent(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=24, choices=SignInKind.choices)
    # The username as typed (a failure may name nobody), and the account's id when there is one:
    # no foreign key, so removing a user neither rewrites nor loses their history.
    username = models.CharField(max_length=150, blank=True)
    user_id = models.IntegerField(null=True, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # Where it happened: the admin's sign-in, the technician's, the second-factor page.
    path = models.CharField("where", max_length=200, blank=True)
    # Who acted on someone else's account (an unlock, a reset), and any short explanation.
    by_username = models.CharField("by", max_length=150, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    objects = SignInEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["username", "-at"], name="signin_username_at")]
        verbose_name = "sign-in event"
        verbose_name_plural = "sign-in record"

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.username or '(no username)'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnly("The sign-in record is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("The sign-in record is append-only.")
