"""How the scale-out run and the capacity bench talk to a deployment: the toolset over HTTP, a
technician's phone or a dispatcher's browser with its session cookies, and Twilio's webhook
with a valid signature. Nothing here imports Django settings-dependent code at import time."""

from __future__ import annotations

import io
import uuid

import requests

from scaleout.deployment import PUBLIC_URL
from tests.twilio_local import TWILIO_TOKEN


def api(
    base: str, method: str, path: str, token: str, body: dict | None = None, *, session=requests, **kwargs
) -> requests.Response:
    """One toolset call as an agent makes it (a POST carries a fresh Idempotency-Key)."""
    headers = {"Authorization": f"Bearer {token}"}
    if method == "POST":
        headers["Idempotency-Key"] = str(uuid.uuid4())
    if body is not None:
        kwargs["json"] = body
    return session.request(method, base + path, headers=headers, timeout=60, **kwargs)


class Browser:
    """A person's browser (a technician's phone, a dispatcher's desk): cookies kept by hand because
    production marks them Secure (a browser on the real site sends them over HTTPS; the
    deployment on loopback speaks plain HTTP)."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        response = requests.request(method, url, headers=headers, allow_redirects=False, timeout=60, **kwargs)
        self.cookies.update(response.cookies.get_dict())
        return response

    def sign_in(self, base: str, username: str, password: str, *, page: str = "/tech/login/") -> None:
        self.request("GET", base + page)
        answer = self.request(
            "POST",
            base + page,
            data={"username": username, "password": password, "csrfmiddlewaretoken": self.cookies["csrftoken"]},
        )
        assert answer.status_code == 302, answer.text[:500]
        assert "sessionid" in self.cookies

    def act(self, base: str, ticket_id: str, action: str, data: dict, files: dict | None = None) -> requests.Response:
        """A button press on the job page, sent as the page's script sends it (JSON answer)."""
        return self.request(
            "POST",
            f"{base}/tech/jobs/{ticket_id}/{action}/",
            data={**data, "csrfmiddlewaretoken": self.cookies["csrftoken"]},
            files=files,
            headers={"X-Field-Fetch": "1", "Idempotency-Key": str(uuid.uuid4())},
        )


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (640, 480)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def twilio_post(base: str, form: dict[str, str]) -> requests.Response:
    """Twilio's "a message comes in" webhook, signed for the deployment's public address."""
    from dispatch.intake.signatures import twilio_signature

    url = PUBLIC_URL + "/hooks/twilio/sms"
    signature = twilio_signature(auth_token=TWILIO_TOKEN, url=url, params={k: [v] for k, v in form.items()})
    return requests.post(base + "/hooks/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}, timeout=60)


def twilio_text(*, sid: str, sender: str, body: str) -> dict[str, str]:
    """One text as Twilio's webhook posts it."""
    return {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+15035550100",
        "Body": body,
        "NumMedia": "0",
    }
