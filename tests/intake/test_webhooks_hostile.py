"""Signed but hostile webhook content: what Twilio would never send is not kept."""

from __future__ import annotations

import pytest

from dispatch.intake.models import InboundMessage
from tests.intake.test_webhooks import _provider_secrets, sms_form, sms_post  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db


def test_media_urls_other_than_https_are_dropped(client):
    form = sms_form(
        NumMedia="4",
        MediaUrl0="file:///etc/passwd",
        MediaContentType0="text/plain",
        MediaUrl1="http://169.254.169.254/latest/meta-data",
        MediaContentType1="text/plain",
        MediaUrl2="javascript:alert(1)",
        MediaContentType2="text/html",
        MediaUrl3="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        MediaContentType3="image/jpeg",
    )
    assert sms_post(client, form).status_code == 200
    message = InboundMessage.objects.get(provider_message_id=form["MessageSid"])
    assert [m["url"] for m in message.media] == [
        "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    ]
