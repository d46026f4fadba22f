"""The IVR's HTTP side against a real local application server: answer URLs (reference A2),
fallback lists (A7), Redirect, action URLs, GetJSON, Play of a URL, error and completed
notifications, and the address guard."""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from http_server import AppServer, Reply, app_server

from ringback.client_files import Storage
from ringback.clock import FakeClock
from ringback.domain.model import Outcome, TaskKind
from ringback.engine.runners import run_attempt
from ringback.ivr.fetch import FetchConfig, FetchError, HttpFetcher
from ringback.ivr.interpret import IvrRun
from ringback.ivr.parse import parse
from ringback.ivr.runner import IvrSource
from ringback.ivr.simulate import simulate_call
from ringback.telephony.base import CallRecord
from ringback.telephony.sim import SimDialer
from support import attempt_context, wav_bytes

CLIENT = 3
LOCAL = HttpFetcher(FetchConfig(timeout_s=2.0, allow_private=True))  # tests: 127.0.0.1 allowed


@pytest.fixture
async def server() -> AsyncIterator[AppServer]:
    async with app_server() as running:
        yield running


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "storage")


def dead_url() -> str:
    """A URL on a port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/down"


async def simulate(
    source: IvrSource | str, digits: str = "", **kwargs: Any
) -> tuple[IvrRun, CallRecord]:
    kwargs.setdefault("fetcher", LOCAL)
    document_or_source = parse(source) if isinstance(source, str) else source
    return await simulate_call(
        document_or_source, FakeClock(), digits=digits, client_id=CLIENT, **kwargs
    )


def _play_copies() -> set[Path]:
    """The temporary copies of downloaded audio now on disk."""
    return set(Path(tempfile.gettempdir()).glob("ringback-play-*"))


def spoken(record: CallRecord) -> list[str]:
    return [entry["text"] for entry in record.played if entry["type"] == "speak"]


# --- answer URLs ---------------------------------------------------------------------------


async def test_the_answer_url_is_posted_the_call_parameters_and_its_reply_runs(
    server: AppServer,
) -> None:
    server.replies["/answer"] = Reply("<Response><Speak>Hi {{CallingNumber}}</Speak></Response>")
    result, record = await simulate(IvrSource("url", server.url("/answer")))
    assert result.ok, result.error
    assert spoken(record) == ["Hi 09012341234"]
    [request] = server.requests
    assert request.method == "POST"
    params = request.params
    assert params["CallStatus"] == "in-progress"
    assert params["Direction"] == "inbound"
    assert params["CallingNumber"] == "09012341234"
    assert params["CalledNumber"] == "05068680000"
    assert params["CallUUID"] == result.variables["CallUUID"]
    assert {"From", "To", "Anonymous", "Digits"} <= set(params)


async def test_the_answer_url_fallback_list_skips_a_dead_url_a_500_and_a_slow_server(
    server: AppServer,
) -> None:
    server.replies["/500"] = Reply("oops", status=500)
    server.replies["/slow"] = Reply("<IVR><Speak>late</Speak></IVR>", delay_s=1.0)
    server.replies["/ok"] = Reply("<IVR><Speak>third time lucky</Speak></IVR>")
    fetcher = HttpFetcher(FetchConfig(timeout_s=0.3, allow_private=True))
    urls = ",".join([dead_url(), server.url("/500"), server.url("/slow"), server.url("/ok")])
    result, record = await simulate(IvrSource("url", urls), fetcher=fetcher)
    assert result.ok, result.error
    assert spoken(record) == ["third time lucky"]
    entry = str(result.trace[0])
    assert entry.startswith(f"line 0 answer URL: POST {server.url('/ok')} (after ")
    assert "cannot connect" in entry
    assert "HTTP 500" in entry
    assert "no reply within 0.3 s" in entry


async def test_when_no_answer_url_answers_the_call_ends_with_a_clear_error(
    server: AppServer,
) -> None:
    server.replies["/404"] = Reply("gone", status=404)
    result, record = await simulate(IvrSource("url", server.url("/404")))
    assert result.error is not None
    assert str(result.error) == (f"Cannot fetch the IVR document: {server.url('/404')}: HTTP 404")
    assert record.ended_at is not None


async def test_a_runtime_error_is_reported_to_the_answer_url_as_callstatus_error(
    server: AppServer,
) -> None:
    server.replies["/answer"] = Reply(
        "<IVR><Set var='amount' val='1234'/>\n<Play>audio/missing.wav</Play></IVR>"
    )
    result, _ = await simulate(IvrSource("url", server.url("/answer")))
    assert str(result.error) == ("line 2: Cannot execute Play. No client storage is available here")
    first, report = server.requests
    assert first.params["CallStatus"] == "in-progress"
    assert report.params["CallStatus"] == "error"
    assert report.params["Error"] == "Cannot execute Play. No client storage is available here"
    assert report.params["var_amount"] == "1234"
    assert result.notifications == [f"CallStatus=error sent to {server.url('/answer')} (HTTP 200)"]


async def test_an_invalid_reply_ends_the_call_and_is_reported_in_the_dialects_words(
    server: AppServer,
) -> None:
    server.replies["/answer"] = Reply("<IVR>\n<Speak studio='x'>hi</Speak></IVR>")
    result, record = await simulate(IvrSource("url", server.url("/answer")))
    assert str(result.error) == "line 2: Element Speak does not support attribute studio"
    assert spoken(record) == []
    report = server.requests[-1]
    assert report.params["CallStatus"] == "error"
    assert report.params["Error"] == "Element Speak does not support attribute studio"


async def test_the_completed_notification_carries_the_set_variables(server: AppServer) -> None:
    server.replies["/done"] = Reply("thanks")
    result, _ = await simulate(
        "<IVR><Set var='amount' expr='1000 + 234'/><Speak>bye</Speak></IVR>",
        completed_url=server.url("/done"),
    )
    assert result.ok
    [notice] = server.requests
    assert notice.path == "/done"
    assert notice.params["CallStatus"] == "completed"
    assert notice.params["var_amount"] == "1234"
    assert str(result.trace[-1]) == (
        f"line 0 notify: CallStatus=completed sent to {server.url('/done')} (HTTP 200)"
    )


async def test_a_failed_completed_notification_is_noted_but_does_not_fail_the_call() -> None:
    result, _ = await simulate("<IVR><Speak>bye</Speak></IVR>", completed_url=dead_url())
    assert result.ok
    assert result.notifications[0].startswith("CallStatus=completed not delivered: ")


# --- Redirect and action URLs ------------------------------------------------------------


async def test_redirect_replaces_the_document_and_posts_the_var_parameters(
    server: AppServer,
) -> None:
    server.replies["/next"] = Reply("<IVR><Speak>now {{amount}}</Speak></IVR>")
    xml = (
        f"<IVR><Set var='amount' val='42'/><Redirect>{server.url('/next')}</Redirect>"
        "<Speak>never</Speak></IVR>"
    )
    result, record = await simulate(xml)
    assert result.ok, result.error
    assert spoken(record) == ["now 42"]
    [request] = server.requests
    assert (request.method, request.params["var_amount"]) == ("POST", "42")
    assert result.documents == [server.url("/next")]


async def test_redirect_with_method_get_sends_the_parameters_as_a_query(
    server: AppServer,
) -> None:
    server.replies["/next"] = Reply("<IVR><Speak>got it</Speak></IVR>")
    _, record = await simulate(
        f"<IVR><Redirect method='GET'>{server.url('/next')}</Redirect></IVR>"
    )
    assert spoken(record) == ["got it"]
    [request] = server.requests
    assert request.method == "GET" and request.params["CallStatus"] == "in-progress"


async def test_redirect_to_a_storage_file_or_a_section(server: AppServer, storage: Storage) -> None:
    storage.write_bytes(CLIENT, "ivr/next.xml", b"<IVR><Speak>from storage</Speak></IVR>")
    xml = (
        "<IVR><Redirect>menu</Redirect><Speak>skipped</Speak>"
        "<Section name='menu'><Speak>menu</Speak>"
        f"<Redirect>{dead_url()}, file://ivr/next.xml</Redirect></Section></IVR>"
    )
    result, record = await simulate(xml, storage=storage)
    assert result.ok, result.error
    assert spoken(record) == ["menu", "from storage"]
    assert result.documents == ["storage:ivr/next.xml"]


async def test_getdigits_action_url_posts_the_digits_and_runs_the_reply(
    server: AppServer,
) -> None:
    server.replies["/menu"] = Reply("<IVR><Speak>you chose {{Digits}}</Speak></IVR>")
    xml = (
        f"<IVR><GetDigits action='{dead_url()},{server.url('/menu')}' numDigits='1'>"
        "<Speak>press</Speak></GetDigits><Speak>not reached</Speak></IVR>"
    )
    _, record = await simulate(xml, digits="7")
    assert spoken(record) == ["press", "you chose 7"]
    [request] = server.requests
    assert request.params["Digits"] == "7"


async def test_an_action_with_no_working_target_ends_the_call_naming_each_failure(
    server: AppServer,
) -> None:
    xml = f"<IVR><GetDigits action='{server.url('/x')},nosuch.xml' numDigits='1'/></IVR>"
    result, _ = await simulate(xml, digits="1", storage=None)
    assert str(result.error) == (
        "line 1: Cannot execute GetDigits. No action target could be loaded: "
        f"{server.url('/x')}: HTTP 404; nosuch.xml: no Section of that name and no client "
        "storage"
    )


async def test_redirect_loops_are_bounded(server: AppServer) -> None:
    server.replies["/loop"] = Reply(f"<IVR><Redirect>{server.url('/loop')}</Redirect></IVR>")
    result, _ = await simulate(f"<IVR><Redirect>{server.url('/loop')}</Redirect></IVR>")
    assert result.error is not None
    assert "jumped more than 1000 times" in str(result.error)


# --- SetErrorHandler -------------------------------------------------------------------


async def test_an_error_handler_url_receives_the_error_and_takes_over(server: AppServer) -> None:
    server.replies["/oops"] = Reply("<IVR><Speak>sorry: {{Error}}</Speak></IVR>")
    xml = (
        f"<IVR><SetErrorHandler>{server.url('/oops')}</SetErrorHandler>"
        "<Speak>before</Speak>\n<Play>none.wav</Play></IVR>"
    )
    result, record = await simulate(xml)
    assert result.ok, result.error
    message = "Cannot execute Play. No client storage is available here"
    assert spoken(record) == ["before", f"sorry: {message}"]
    assert server.requests[0].params["Error"] == message


# --- GetJSON ---------------------------------------------------------------------------


async def test_getjson_get_stores_the_parsed_json_for_dotted_access(server: AppServer) -> None:
    server.replies["/balance"] = Reply(
        json.dumps({"balance": 1200, "info": {"name": "Sato"}}), content_type="application/json"
    )
    xml = (
        "<IVR><GetJSON var='data' method='GET' "
        f"url='{server.url('/balance')}?n={{{{CallingNumber}}}}'/>"
        "<If expr='data.balance > 1000'><Then><Speak>{{data.info.name}} rich</Speak></Then></If>"
        "</IVR>"
    )
    _, record = await simulate(xml)
    assert spoken(record) == ["Sato rich"]
    [request] = server.requests
    assert request.method == "GET" and request.params == {"n": "09012341234"}


async def test_getjson_post_sends_the_call_parameters(server: AppServer) -> None:
    server.replies["/data"] = Reply("[1, 2]", content_type="application/json")
    result, _ = await simulate(
        f"<IVR><Set var='x' val='y'/><GetJSON var='data' url='{server.url('/data')}'/></IVR>"
    )
    assert result.variables["data"] == [1, 2]
    [request] = server.requests
    assert request.method == "POST"
    assert request.params["var_x"] == "y" and request.params["CallStatus"] == "in-progress"


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (Reply("not json", content_type="text/plain"), "the reply is not JSON"),
        (Reply('{"a": 1}', status=500), "HTTP 500"),
        (Reply('{"a": 1}', delay_s=1.0), "no reply within 0.3 s"),
        (Reply("[" * 100_000 + "]" * 100_000), "the reply is not JSON"),
    ],
    ids=["not-json", "500", "timeout", "too-deep"],
)
async def test_getjson_sets_null_on_any_failure_and_the_call_goes_on(
    server: AppServer, reply: Reply, why: str
) -> None:
    server.replies["/data"] = reply
    fetcher = HttpFetcher(FetchConfig(timeout_s=0.3, allow_private=True))
    xml = (
        f"<IVR><GetJSON var='data' url='{server.url('/data')}'/>"
        "<If expr='data'><Then><Speak>yes</Speak></Then><Else><Speak>no</Speak></Else></If></IVR>"
    )
    result, record = await simulate(xml, fetcher=fetcher)
    assert result.ok
    assert result.variables["data"] is None
    assert spoken(record) == ["no"]
    assert why in str(result.trace[0])


async def test_getjson_reads_a_storage_file_and_a_missing_one_gives_null(
    storage: Storage,
) -> None:
    storage.write_bytes(CLIENT, "data/info.json", b'{"greeting": "hello"}')
    xml = (
        "<IVR><GetJSON var='a' url='file://data/info.json'/>"
        "<GetJSON var='b' url='file://data/none.json'/><Speak>{{a.greeting}}</Speak></IVR>"
    )
    result, record = await simulate(xml, storage=storage)
    assert spoken(record) == ["hello"]
    assert result.variables["b"] is None
    assert str(result.trace[1]) == (
        "line 1 GetJSON: b = null (file://data/none.json: File data/none.json doesn't exist)"
    )


async def test_a_large_reply_is_read_whole_up_to_the_limit(server: AppServer) -> None:
    numbers = list(range(100_000))  # about 600 kB: many chunks
    server.replies["/many"] = Reply(json.dumps(numbers), content_type="application/json")
    reply = await LOCAL.fetch([server.url("/many")], method="GET")
    assert json.loads(reply.body) == numbers


async def test_a_reply_larger_than_the_limit_is_a_failure(server: AppServer) -> None:
    server.replies["/big"] = Reply("[" + "1," * 1000 + "1]")
    fetcher = HttpFetcher(FetchConfig(max_bytes=100, allow_private=True))
    with pytest.raises(FetchError, match="larger than 100 bytes"):
        await fetcher.fetch([server.url("/big")])


# --- Play of a URL -----------------------------------------------------------------------


async def test_play_of_a_url_downloads_the_file_and_plays_it(server: AppServer) -> None:
    server.replies["/hello.wav"] = Reply(wav_bytes(0.25), content_type="audio/wav")
    copies = _play_copies()
    result, record = await simulate(f"<IVR><Play>{server.url('/hello.wav')}</Play></IVR>")
    assert result.ok, result.error
    [played] = record.played
    assert played["seconds"] == 0.25
    assert played["file"] == server.url("/hello.wav")  # the URL, not the server's copy
    assert _play_copies() <= copies  # and the copy is removed
    assert server.requests[0].method == "GET"


async def test_play_of_a_url_that_is_not_audio_ends_the_call_clearly(server: AppServer) -> None:
    server.replies["/x.wav"] = Reply("not a wav", content_type="audio/wav")
    result, _ = await simulate(f"<IVR><Play>{server.url('/x.wav')}</Play></IVR>")
    assert not result.ok and result.error is not None and result.error.line == 1
    # named by its URL, not by the temporary file it was downloaded to
    message = result.error.message
    assert message.startswith(f"Cannot execute Play. Cannot play {server.url('/x.wav')}: ")
    assert "not an audio file ringback can play" in message and "ringback-play-" not in message


# --- the address guard -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is the cloud metadata address",
        ),
        ("http://[fd00:ec2::254]/latest/", "fd00:ec2::254 is the cloud metadata address"),
        ("http://169.254.10.1/x", "169.254.10.1 is a link-local address"),
        ("http://[fe80::1]/x", "fe80::1 is a link-local address"),
        ("http://10.1.2.3/x", "10.1.2.3 is not a public address"),
        ("http://localhost:9/x", "localhost resolves to 127.0.0.1, a loopback address"),
    ],
)
async def test_the_guard_refuses_link_local_metadata_and_private_targets(
    url: str, reason: str
) -> None:
    guarded = HttpFetcher(FetchConfig(timeout_s=2.0))
    with pytest.raises(FetchError) as caught:
        await guarded.fetch([url])
    assert reason in str(caught.value)
    assert "refused" in str(caught.value)


async def test_a_metadata_address_written_as_a_number_is_not_fetched() -> None:
    guarded = HttpFetcher(FetchConfig(timeout_s=2.0))
    with pytest.raises(FetchError, match=r"refused: .*2852039166 is 169\.254\.169\.254, the cloud"):
        await guarded.fetch(["http://2852039166/latest/"])


async def test_a_local_server_is_refused_unless_private_targets_are_allowed(
    server: AppServer,
) -> None:
    server.replies["/data"] = Reply('{"a": 1}')
    xml = f"<IVR><GetJSON var='data' url='{server.url('/data')}'/></IVR>"
    refused, _ = await simulate(xml, fetcher=HttpFetcher(FetchConfig()))
    assert refused.variables["data"] is None
    assert "127.0.0.1 is a loopback address" in str(refused.trace[0])
    assert server.requests == []
    allowed, _ = await simulate(xml, fetcher=LOCAL)
    assert allowed.variables["data"] == {"a": 1}


# --- ivr_call tasks with an answer URL -----------------------------------------------------


async def test_an_ivr_call_task_with_an_answer_url_runs_the_fetched_document(
    server: AppServer, storage: Storage
) -> None:
    server.replies["/answer"] = Reply("<IVR><Speak>Hello {{CalledNumber}}</Speak></IVR>")
    dialer = SimDialer(FakeClock(), fast=True)
    ctx = attempt_context(
        TaskKind.IVR_CALL,
        {
            "calling_number": "+15550000",
            "called_number": "+15551234",
            "ivr_xml": {"type": "url", "data": f"{dead_url()},{server.url('/answer')}"},
        },
        dialer,
        storage,
        client_id=CLIENT,
        fetcher=HttpFetcher(FetchConfig(allow_private=True)),  # the server is on 127.0.0.1
    )
    result = await run_attempt(ctx)
    assert (result.success, result.outcome, result.comment) == (
        True,
        Outcome.ANSWERED,
        "IVR completed",
    )
    assert spoken(ctx.calls[0]) == ["Hello +15551234"]
    [request] = server.requests
    assert request.params["Direction"] == "outbound"
    assert request.params["CallUUID"] == "c0ffee"
