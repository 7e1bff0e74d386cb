"""The public request form, and how files customers send us are checked and kept.

A file's type is read from its first bytes (never its name or the browser's word for it), and
stored names are built from ids we made, so nothing a customer sends ends up in a storage path.
"""

from __future__ import annotations

import hashlib
import uuid

import phonenumbers
from django import forms
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from dispatch.common.files import UnreadableImage, raster_facts, sniff

PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_COUNT = 5
ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
ATTACHMENT_MAX_COUNT = 10
# What we keep of an email attachment; anything else is recorded by name, type and size only.
KEPT_ATTACHMENT_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "application/pdf"})


def _raster_readable(data: bytes) -> bool:
    """Whether Pillow decodes the bytes as an image (a JPEG header on a script is not a photo)."""
    try:
        raster_facts(data)
    except UnreadableImage:
        return False
    return True


def attachments_store(uploads, *, folder: str, images_only: bool = False) -> list[dict]:
    """Keep what customers attached under intake/<folder>/ and describe each file for the message.

    Files of an accepted (sniffed) type are stored by their sha256, so a redelivered message
    stores nothing twice; the rest are only described. Returns [{name, content_type, size,
    sha256?, path?}] for `message_receive(media=...)`.
    """
    media: list[dict] = []
    for index, upload in enumerate(list(uploads)[:ATTACHMENT_MAX_COUNT]):
        name = str(getattr(upload, "name", "") or f"attachment-{index + 1}")[:200]
        size = int(getattr(upload, "size", 0) or 0)
        record = {"name": name, "content_type": str(getattr(upload, "content_type", "") or "")[:100], "size": size}
        media.append(record)
        if size > ATTACHMENT_MAX_BYTES:
            record["refused"] = "too large"
            continue
        upload.seek(0)
        data = upload.read(ATTACHMENT_MAX_BYTES + 1)
        sniffed = sniff(data[:32]) if data else None
        accepted = sniffed is not None and sniffed.content_type in KEPT_ATTACHMENT_TYPES
        if accepted and images_only and not sniffed.content_type.startswith("image/"):
            accepted = False
        if accepted and sniffed.is_raster and not _raster_readable(data):
            accepted = False
        if not accepted:
            record["refused"] = "type not accepted"
            continue
        digest = hashlib.sha256(data).hexdigest()
        path = f"intake/{folder}/{digest[:32]}.{sniffed.extension}"
        if not default_storage.exists(path):
            path = default_storage.save(path, ContentFile(data))
        record.update(content_type=sniffed.content_type, sha256=digest, path=path)
    return media


class MultiplePhotoInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PhotosField(forms.FileField):
    """Zero to PHOTO_MAX_COUNT photos, each an image by its bytes and at most PHOTO_MAX_BYTES."""

    widget = MultiplePhotoInput(attrs={"accept": "image/*", "multiple": True})

    def clean(self, data, initial=None):
        files = [f for f in (data if isinstance(data, (list, tuple)) else [data]) if f]
        if len(files) > PHOTO_MAX_COUNT:
            raise forms.ValidationError(f"Please attach at most {PHOTO_MAX_COUNT} photos.")
        for upload in files:
            if upload.size > PHOTO_MAX_BYTES:
                raise forms.ValidationError(
                    f"“{upload.name}” is larger than {PHOTO_MAX_BYTES // (1024 * 1024)} MB. Please send a smaller photo."
                )
            upload.seek(0)
            head = upload.read(32)
            upload.seek(0)
            sniffed = sniff(head)
            if sniffed is None or not sniffed.content_type.startswith("image/"):
                raise forms.ValidationError(
                    f"“{upload.name}” is not a photo. Please attach JPEG, PNG, WebP or HEIC images."
                )
            if sniffed.is_raster and not _raster_readable(upload.read()):
                raise forms.ValidationError(f"“{upload.name}” could not be opened as a photo.")
            upload.seek(0)
        return files


def _phone_region() -> str:
    return getattr(settings, "DISPATCH_DEFAULT_PHONE_REGION", "US") or "US"


class ServiceRequestForm(forms.Form):
    """What a customer tells us on /request/."""

    name = forms.CharField(
        label="Your name",
        max_length=200,
        error_messages={"required": "Please tell us your name."},
        widget=forms.TextInput(attrs={"autocomplete": "name", "autocapitalize": "words"}),
    )
    phone = forms.CharField(
        label="Mobile phone",
        max_length=40,
        required=False,
        help_text="Best for quick updates: we text you appointment times.",
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
    )
    email = forms.EmailField(
        label="Email",
        max_length=254,
        required=False,
        help_text="If you'd rather hear from us by email.",
        error_messages={"invalid": "Please enter a valid email address, like pat@example.com."},
        widget=forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email"}),
    )
    address = forms.CharField(
        label="Service address",
        max_length=300,
        error_messages={"required": "Please tell us where the job is."},
        help_text="Street, city and ZIP code.",
        widget=forms.TextInput(attrs={"autocomplete": "street-address"}),
    )
    problem = forms.CharField(
        label="What's wrong?",
        max_length=2000,
        error_messages={"required": "Please tell us a little about the problem."},
        help_text="For example: the front door won't latch, the garage door is stuck open.",
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    preferred_times = forms.CharField(
        label="When suits you?",
        max_length=200,
        required=False,
        help_text="For example: tomorrow morning, weekdays after 3 pm.",
    )
    photos = PhotosField(label="Photos (optional)", required=False)
    # A field people never see and bots fill in.
    website = forms.CharField(
        required=False,
        label="Leave this empty",
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )
    # Made by the server when the form is shown; a second submission of the same page carries
    # the same id, which intake deduplicates like a provider's message id.
    submission_id = forms.UUIDField(widget=forms.HiddenInput)

    def clean_phone(self) -> str:
        value = self.cleaned_data.get("phone", "").strip()
        if not value:
            return ""
        try:
            number = phonenumbers.parse(value, _phone_region())
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_possible_number(number):
            raise forms.ValidationError("Please enter a phone number we can reach you on, like 510 555 0123.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def clean(self):
        cleaned = super().clean()
        if not self.errors.get("phone") and not cleaned.get("phone") and not cleaned.get("email"):
            self.add_error("phone", "Please give a phone number or an email address so we can reach you.")
        return cleaned

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("website", "").strip())

    @staticmethod
    def fresh_submission_id() -> uuid.UUID:
        return uuid.uuid4()
