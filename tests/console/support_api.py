"""The API beside the console in the console's tests: a client's token, its storage files and
number routes, and simulated inbound calls (to make calls with transcripts, audio and faxes)."""

from __future__ import annotations

import io
import wave
from typing import Any

import httpx
from support_console import Client, Served


class Api:
    """The client's API (``/api/ver1.0/client/{id}``) with a bearer token."""

    def __init__(self, served: Served, client: Client) -> None:
        answer = httpx.post(
            f"{served.url}/oauth/token",
            data={"grant_type": "client_credentials", "client_id": client.key,
                  "client_secret": client.secret},
            timeout=30.0,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        self.http = httpx.Client(
            base_url=f"{served.url}/api/ver1.0/client/{client.id}",
            headers={"Authorization": f"Bearer {answer.json()['access_token']}"}, timeout=30.0,
        )  # fmt: skip

    def put_file(self, path: str, content: bytes) -> None:
        answer = self.http.put(f"/storage/{path}", content=content)
        assert answer.status_code in (200, 201), answer.text

    def route(self, number: str, ivr_file: str) -> None:
        answer = self.http.put(f"/numbers/{number}", json={"ivr_file": ivr_file})
        assert answer.status_code in (200, 201), answer.text

    def simulate(self, number: str, digits: str = "") -> dict[str, Any]:
        answer = self.http.post("/calls/simulate", json={"called_number": number, "digits": digits})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


def wav(seconds: float = 0.2) -> bytes:
    """A short silent 8 kHz mono WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\0\0" * int(8000 * seconds))
    return out.getvalue()


#: an IVR that asks for a digit and says which department it leads to
SALES_IVR = """<IVR>
  <GetDigits numDigits="1" timeout="3" validDigits="12">
    <Speak>Press 1 for sales, 2 for support</Speak>
  </GetDigits>
  <Switch expr="Digits">
    <Case val="1"><Speak>Sales</Speak></Case>
    <Default><Speak>Support</Speak></Default>
  </Switch>
</IVR>"""

#: an IVR that plays a file, asks for a digit and receives a fax
MENU_AND_FAX = """<IVR>
  <Play>audio/hello.wav</Play>
  <GetDigits numDigits="1" timeout="3" validDigits="12">
    <Speak>Press 1 to send us a fax</Speak>
  </GetDigits>
  <ReceiveFax>in/fax.tif</ReceiveFax>
</IVR>"""


def fax_call(api: Api, number: str) -> dict[str, Any]:
    """A simulated inbound call to ``number`` (routed to MENU_AND_FAX): it plays
    audio/hello.wav, the caller presses 1, a one-page fax is received."""
    api.put_file("audio/hello.wav", wav())
    api.put_file("ivr/menu.xml", MENU_AND_FAX.encode())
    api.route(number, "ivr/menu.xml")
    call = api.simulate(number, digits="1")
    assert call["status"] == "completed", call
    return call


def ivr_job(api: Api, ivr: str, called: str = "0901230001") -> int:
    """An ivr_call job with ``ivr`` inline, in the default queue; its task id."""
    answer = api.http.post(
        "/jobs/",
        json={"type": "ivr_call", "data": {"calling_number": "0506868000",
              "called_number": called, "ivr_xml": {"type": "inline", "data": ivr}}},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])
