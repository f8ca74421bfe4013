"""Control-plane envelopes, without a network."""

import asyncio
import json

import pytest

from chimerapy import ProtocolError
from chimerapy.net.control import Envelope, Requests, decode, encode


def test_request_reply_roundtrip():
    request = Envelope("start", {"mode": "run"}, id=3)
    assert decode(encode(request)) == request
    reply = request.reply({"ok": 1})
    assert decode(encode(reply)) == Envelope("reply", {"ok": 1}, reply_to=3)
    failure = request.fail("nope")
    decoded = decode(encode(failure))
    assert (decoded.ok, decoded.error, decoded.reply_to) == (False, "nope", 3)


@pytest.mark.parametrize("raw, match", [
    ("not json", "not valid JSON"),
    ("[1]", "JSON object"),
    ('{"type": "launch_missiles"}', "unknown control message type"),
    ('{"type": "register", "data": {"name": "w"}}', r"missing field\(s\) \['id'\]"),
    ('{"type": "start", "data": []}', "'data' must be an object"),
    ('{"type": "start", "id": "7"}', "'id' must be an integer"),
    ('{"type": "reply", "data": {}}', "reply_to"),
    (b"\xff\xfe", "not valid JSON"),
    ("[" * 200_000, "not valid JSON: RecursionError"),  # nested past the recursion limit
])
def test_malformed_messages_are_refused_with_a_reason(raw, match):
    with pytest.raises(ProtocolError, match=match):
        decode(raw)


def test_oversized_message_is_refused(monkeypatch):
    import chimerapy.net.control as control

    monkeypatch.setattr(control, "MAX_MESSAGE_BYTES", 100)
    with pytest.raises(ProtocolError, match="exceeds"):
        decode(json.dumps({"type": "start", "data": {"x": "y" * 200}}))


def test_requests_pair_replies_and_ignore_strays():
    async def scenario():
        requests = Requests()
        first, f1 = requests.new("start")
        second, f2 = requests.new("stop")
        assert first.id != second.id
        assert not requests.resolve(Envelope("reply", reply_to=999))
        assert requests.resolve(second.reply({"n": 2}))
        assert (await f2).data == {"n": 2}
        requests.fail_all(ConnectionError("gone"))
        with pytest.raises(ConnectionError):
            await f1

    asyncio.run(scenario())
