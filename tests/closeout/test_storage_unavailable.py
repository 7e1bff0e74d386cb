"""An upload while the file store cannot be reached: the technician (or the toolset's client) gets
a 503 STORAGE_UNAVAILABLE saying the photo was not saved and to try again in a minute, and nothing
is left half-done: no evidence row, no audit event, the ticket's version as it was, and no file in
the bucket, not even the part written before the store went away (when the store still answers
the removal). Reading a file back from a store out of reach is a 503 too, never a 500.

S3 is moto's server on a local port (tests/s3.py). "Unreachable" is the same storage configuration
pointed at a port nothing listens on; failures between the two writes of an upload (the original,
then its thumbnail) are made at the storage's edge by FlakyS3Storage, which raises botocore's own
exceptions or really loses its endpoint, and otherwise is the project's S3Storage.
"""

from __future__ import annotations

import io
import logging
import socket
import uuid

import pytest
from botocore.exceptions import ReadTimeoutError
from django.core.files.storage import storages
from django.test import Client
from django.urls import reverse
from storages.backends.s3 import S3Storage

from dispatch.closeout.models import Evidence
from dispatch.tickets.models import AuditEvent, IdempotencyRecord
from tests.closeout.test_evidence_photos import phone_jpeg
from tests.factories import jwt_for
from tests.s3 import Request, moto_s3_server, s3_bucket, s3_storages  # noqa: F401  (the moto_s3 and s3 fixtures)

pytestmark = pytest.mark.django_db

PHOTO_KEY = "photo_before_door_edge_and_strike"
NOT_SAVED = "The photo was not saved: the file store cannot be reached right now. Try again in a minute."


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FlakyS3Storage(S3Storage):
    """The project's S3 storage, whose saves a test can make go wrong. `trouble` maps the number
    of a save (1: an upload's original, 2: its thumbnail, ...) to what happens to it:

    - "timeout": S3 is too slow to answer; nothing is stored (botocore's ReadTimeoutError).
    - "answer lost": S3 stores the object, but its answer never arrives (the same exception).
    - "gone": S3 goes away before this save; from then on the storage talks to a closed port.
    """

    def __init__(self, **options):
        super().__init__(**options)
        self.saves = 0
        self.trouble: dict[int, str] = {}

    def _save(self, name, content):
        self.saves += 1
        trouble = self.trouble.get(self.saves)
        if trouble == "timeout":
            raise ReadTimeoutError(endpoint_url=f"{self.endpoint_url}/{self.bucket_name}/{name}")
        if trouble == "gone":
            self.endpoint_url = f"http://127.0.0.1:{closed_port()}"
            self._connections.connection = None  # the next call builds its client on the new endpoint
            self._bucket = None
        saved = super()._save(name, content)
        if trouble == "answer lost":
            raise ReadTimeoutError(endpoint_url=f"{self.endpoint_url}/{self.bucket_name}/{name}")
        return saved


@pytest.fixture
def flaky(s3, settings) -> FlakyS3Storage:
    """Django's default storage as FlakyS3Storage on the test's bucket (otherwise configured as
    config/settings/base.py configures S3)."""
    configured = s3_storages(bucket=s3.name, endpoint_url=storages["default"].endpoint_url)
    configured["default"]["BACKEND"] = f"{__name__}.FlakyS3Storage"
    settings.STORAGES = configured
    storage = storages["default"]
    assert isinstance(storage, FlakyS3Storage)

    def record(request, **kwargs):  # into the bucket's list, as the `s3` fixture records its storage's
        s3.requests.append(Request(method=request.method, url=request.url, headers=dict(request.headers)))

    storage.connection.meta.client.meta.events.register("before-send.s3", record)
    return storage


@pytest.fixture
def s3_down(s3, settings):
    """S3 out of reach: the storage configured as before, its endpoint a port nothing listens on.
    Call it to bring S3 back (the test's bucket on moto's server, as it was)."""
    live = settings.STORAGES
    settings.STORAGES = s3_storages(bucket=s3.name, endpoint_url=f"http://127.0.0.1:{closed_port()}")

    def back() -> None:
        settings.STORAGES = live

    return back


def api_upload(ticket, technician, *, key: uuid.UUID | None = None, data: bytes | None = None):
    file = io.BytesIO(data or phone_jpeg())
    file.name = "IMG_0001.jpg"
    return Client().post(
        f"/api/v1/tickets/{ticket.id}/evidence",
        data={"kind": "PHOTO", "evidence_key": PHOTO_KEY, "file": file},
        HTTP_IDEMPOTENCY_KEY=str(key or uuid.uuid4()),
        HTTP_AUTHORIZATION=f"Bearer {jwt_for(technician.user.username, 'technician')}",
    )


def photo_files(count: int = 1) -> list[io.BytesIO]:
    files = []
    for index in range(count):
        file = io.BytesIO(phone_jpeg((64 + index, 48), gps=False))
        file.name = f"door-{index}.jpg"
        files.append(file)
    return files


def phone_of(technician) -> Client:
    phone = Client()
    phone.force_login(technician.user)
    return phone


def page_upload(phone, ticket, *, fetch: bool = True, files: list | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())}
    if fetch:
        headers["HTTP_X_FIELD_FETCH"] = "1"
    return phone.post(
        reverse("field:act", args=[ticket.id, "photo"]),
        {"evidence_key": PHOTO_KEY, "file": files or photo_files()},
        **headers,
    )


class Unchanged:
    """What a refused upload must leave as it found: the ticket's evidence, its audit chain and
    version, and the stored answers of idempotent commands."""

    def __init__(self, ticket):
        self.ticket = ticket
        self.before = self.now()

    def now(self) -> tuple:
        self.ticket.refresh_from_db()
        return (
            Evidence.objects.filter(ticket=self.ticket).count(),
            AuditEvent.objects.filter(ticket=self.ticket).count(),
            self.ticket.version,
            IdempotencyRecord.objects.count(),
        )

    def holds(self) -> bool:
        return self.now() == self.before


# --- S3 out of reach ---------------------------------------------------------------------------


def test_a_photo_uploaded_through_the_toolset_while_s3_is_unreachable_is_a_503_that_stores_nothing(
    s3, s3_down, job, technician, caplog
):
    unchanged = Unchanged(job)
    key = uuid.uuid4()

    with caplog.at_level(logging.WARNING, logger="dispatch.closeout"):
        response = api_upload(job, technician, key=key)

    assert response.status_code == 503, response.content
    error = response.json()["error"]
    assert error["code"] == "STORAGE_UNAVAILABLE"
    assert error["message"] == NOT_SAVED
    assert error["retry_after_seconds"] == 60
    assert response["Retry-After"] == "60"  # what an HTTP client library waits by
    assert b"127.0.0.1" not in response.content  # botocore's message names the endpoint: not for the client
    assert unchanged.holds()
    # The cause is logged for the operator; the removal of what the failed write may have left
    # is tried, and refused by the same store, which may hold it (an earlier attempt's object).
    logged = [r for r in caplog.records if r.name == "dispatch.closeout"]
    original = f"evidence/{job.id}/"
    assert [(r.levelno, r.getMessage().split(original)[0]) for r in logged] == [
        (logging.WARNING, "File store unreachable: EndpointConnectionError"),
        (logging.WARNING, "Could not remove "),
    ]
    assert logged[1].getMessage().endswith(".jpg, whose save failed (EndpointConnectionError): the store may hold it.")

    # S3 is back: the bucket holds nothing of the refused upload, and the same request (the same
    # Idempotency-Key: the refusal stored no answer to replay) now goes through, once.
    s3_down()
    assert s3.keys() == []
    retried = api_upload(job, technician, key=key)
    assert retried.status_code == 201, retried.content
    item = Evidence.objects.get(ticket=job)
    assert s3.keys() == sorted([item.file.name, item.metadata["thumbnail"]])


def test_a_photo_sent_from_the_technicians_page_while_s3_is_unreachable_is_a_503_for_the_script(
    s3, s3_down, job, technician
):
    unchanged = Unchanged(job)

    response = page_upload(phone_of(technician), job)

    # The page's script keeps a post answered 5xx queued on the phone and sends it again later.
    assert response.status_code == 503, response.content
    assert response.json() == {"ok": False, "code": "STORAGE_UNAVAILABLE", "message": NOT_SAVED, "missing": []}
    assert unchanged.holds()
    s3_down()
    assert s3.keys() == []


def test_a_photo_posted_without_scripts_while_s3_is_unreachable_comes_back_to_the_job_page_with_the_message(
    s3, s3_down, job, technician
):
    unchanged = Unchanged(job)
    phone = phone_of(technician)

    response = page_upload(phone, job, fetch=False)

    # As every refusal of a plain form post: back to the job page, the reason shown on it.
    assert response.status_code == 302
    page = phone.get(response["Location"])
    assert page.status_code == 200
    assert NOT_SAVED in page.content.decode()
    assert unchanged.holds()
    s3_down()
    assert s3.keys() == []


def test_a_photo_uploaded_while_the_media_disk_refuses_the_write_is_a_503(settings, tmp_path, job, technician):
    (tmp_path / "a-file").write_text("where the media folder should be")
    settings.MEDIA_ROOT = tmp_path / "a-file" / "media"
    unchanged = Unchanged(job)

    response = api_upload(job, technician)

    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "STORAGE_UNAVAILABLE"
    assert unchanged.holds()


# --- failures between the two writes of an upload -----------------------------------------------


def test_a_thumbnail_that_times_out_takes_the_original_already_written_with_it(s3, flaky, job, technician):
    flaky.trouble = {2: "timeout"}
    unchanged = Unchanged(job)

    response = api_upload(job, technician)

    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "STORAGE_UNAVAILABLE"
    assert unchanged.holds()
    # The original reached the bucket, and was deleted from it again.
    (original,) = [r.url.split(f"/{s3.name}/", 1)[1] for r in s3.requests if r.method == "PUT"]
    assert original.startswith(f"evidence/{job.id}/") and original.endswith(".jpg")
    assert any(r.method == "DELETE" and r.url.endswith(original) for r in s3.requests)
    assert s3.keys() == []


def test_an_original_stored_whose_answer_was_lost_is_removed(s3, flaky, job, technician):
    flaky.trouble = {1: "answer lost"}
    unchanged = Unchanged(job)

    response = api_upload(job, technician)

    assert response.status_code == 503, response.content
    assert unchanged.holds()
    # S3 kept the object the storage thinks it failed to write; it is removed by the name asked for.
    assert any(r.method == "PUT" for r in s3.requests)
    assert s3.keys() == []


def test_a_later_photo_of_a_multi_photo_post_failing_takes_the_earlier_ones_files_with_it(s3, flaky, job, technician):
    # Saves 1 and 2 are the first photo's original and thumbnail, 3 is the second photo's original.
    flaky.trouble = {3: "timeout"}
    unchanged = Unchanged(job)

    response = page_upload(phone_of(technician), job, files=photo_files(2))

    assert response.status_code == 503, response.content
    assert response.json()["code"] == "STORAGE_UNAVAILABLE"
    assert unchanged.holds()  # the first photo's row rolled back with the post
    assert len([r for r in s3.requests if r.method == "PUT"]) == 2
    assert s3.keys() == []


def test_s3_going_away_between_the_two_writes_is_still_a_503_and_the_leftover_is_logged_by_name(
    s3, flaky, job, technician, caplog
):
    flaky.trouble = {2: "gone"}
    unchanged = Unchanged(job)

    with caplog.at_level(logging.ERROR, logger="dispatch.closeout"):
        response = api_upload(job, technician)

    # The removal cannot reach S3 either: the original stays behind, named in the log for removal
    # by hand; the answer is the same clear 503, not the removal's error.
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "STORAGE_UNAVAILABLE"
    assert unchanged.holds()
    (leftover,) = s3.keys()
    assert leftover.startswith(f"evidence/{job.id}/")
    (logged,) = [r for r in caplog.records if r.name == "dispatch.closeout" and r.levelno == logging.ERROR]
    assert logged.getMessage() == (
        "Could not remove uploaded files whose evidence was not recorded (EndpointConnectionError); "
        f"not removed: {leftover}; perhaps also {leftover.removesuffix('.jpg')}.thumb.jpg"
    )


# --- reading files back ------------------------------------------------------------------------


def test_a_thumbnail_or_an_original_read_while_s3_is_unreachable_is_a_503(s3, settings, job, technician, admin_client):
    assert api_upload(job, technician).status_code == 201
    item = Evidence.objects.get(ticket=job)
    settings.STORAGES = s3_storages(bucket=s3.name, endpoint_url=f"http://127.0.0.1:{closed_port()}")

    thumbnail = phone_of(technician).get(f"/tech/jobs/{job.id}/evidence/{item.id}/thumbnail/")
    original = admin_client.get(f"/admin/closeout/evidence/{item.pk}/file/")

    for response in (thumbnail, original):
        assert response.status_code == 503
        assert response["Retry-After"] == "60"
        assert response["Content-Type"] == "text/plain; charset=utf-8"
        assert response.content.decode() == (
            "The file cannot be shown right now: the file store cannot be reached. Try again in a minute."
        )


def test_a_thumbnail_or_an_original_gone_from_the_bucket_is_a_404_not_a_500(s3, job, technician, admin_client):
    assert api_upload(job, technician).status_code == 201
    item = Evidence.objects.get(ticket=job)
    for key in (item.file.name, item.metadata["thumbnail"]):
        s3.client.delete_object(Bucket=s3.name, Key=key)

    thumbnail = phone_of(technician).get(f"/tech/jobs/{job.id}/evidence/{item.id}/thumbnail/")
    original = admin_client.get(f"/admin/closeout/evidence/{item.pk}/file/")

    assert (thumbnail.status_code, original.status_code) == (404, 404)
