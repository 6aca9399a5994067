"""Signature schemes, config parsing and workflow ids without a network."""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr

from webhook_service import targets
from webhook_service.config import WebhookConfig, webhook_config
from webhook_service.dedupe import MemoryDeliveryStore, Seen
from webhook_service.signatures import (
    SignatureError,
    mitlearn_signature,
    standard_headers,
    verify,
    verify_standard,
)

pytestmark = pytest.mark.webhooks

KEY = b"k" * 32
WHSEC = "whsec_" + base64.b64encode(KEY).decode()
BODY = b'{"source":"mit_edx","content_path":"a.tar.gz"}'
NOW = 1_800_000_000


def test_mitlearn_signature_is_lowercase_hex_hmac():
    import hashlib
    import hmac

    expected = hmac.new(b"secret", BODY, hashlib.sha256).hexdigest()
    assert mitlearn_signature("secret", BODY) == expected == expected.lower()


def test_standard_webhooks_known_vector():
    # The example from the Standard Webhooks reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    body = b'{"test": 2432232314}'
    headers = standard_headers([key], "msg_p5jXN8AQM9LWM0D4loKWxJek", body, timestamp=1614265330)
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(("offset", "ok"), [(0, True), (300, True), (-300, True), (301, False),
                                             (-301, False)])  # fmt: skip
def test_tolerance_is_five_minutes_both_ways(offset: int, ok: bool):
    headers = standard_headers([KEY], "msg_1", BODY, timestamp=NOW + offset)
    if ok:
        assert verify_standard([KEY], BODY, headers, 300, now=NOW).webhook_id == "msg_1"
    else:
        with pytest.raises(SignatureError) as info:
            verify_standard([KEY], BODY, headers, 300, now=NOW)
        assert info.value.status == 401


def test_any_listed_signature_with_any_secret_matches():
    headers = standard_headers([b"other", KEY], "msg_2", BODY, timestamp=NOW)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify_standard([b"third", KEY], BODY, headers, 300, now=NOW).scheme == "standard"
    with pytest.raises(SignatureError) as info:
        verify_standard([b"third"], BODY, headers, 300, now=NOW)
    assert info.value.status == 403


@pytest.mark.parametrize("webhook_id", ["msg.1", "", "a" * 300, "msg 1"])
def test_malformed_webhook_ids_refused(webhook_id: str):
    headers = standard_headers([KEY], "x", BODY, timestamp=NOW)
    headers["webhook-id"] = webhook_id
    with pytest.raises(SignatureError) as info:
        verify_standard([KEY], BODY, headers, 300, now=NOW)
    assert info.value.status == 401


def test_whsec_secret_decodes_and_scheme_selection():
    config = WebhookConfig(secrets=(SecretStr(WHSEC),))
    assert config.standard_keys() == [KEY]
    std = standard_headers([KEY], "msg_3", BODY, timestamp=NOW)
    assert verify(config, std, BODY, now=NOW).scheme == "standard"
    # MIT Learn's sender signs with the literal setting string.
    mit = {"x-mitlearn-signature": mitlearn_signature(WHSEC, BODY)}
    assert verify(config, mit, BODY).scheme == "mitlearn"
    off = WebhookConfig(secrets=(SecretStr(WHSEC),), schemes=frozenset({"standard"}))
    with pytest.raises(SignatureError, match="not accepted"):
        verify(off, mit, BODY)
    with pytest.raises(ValueError, match="base64"):
        WebhookConfig(secrets=(SecretStr("whsec_***"),))


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WEBHOOK_SECRET", "one")
    monkeypatch.setenv("WEBHOOK_SECRETS", "two, three,one")
    monkeypatch.setenv("WEBHOOK_SCHEMES", "standard")
    monkeypatch.setenv("WEBHOOK_MAX_BODY_BYTES", "1000")
    monkeypatch.setenv("OCW_WEBHOOK_KEY", "ocw")
    monkeypatch.setenv("OVS_ALLOWED_MEDIA_HOSTS", "A.example.com,b.example.com")
    config = webhook_config()
    assert [s.get_secret_value() for s in config.secrets] == ["one", "two", "three"]
    assert config.schemes == frozenset({"standard"})
    assert config.max_body_bytes == 1000
    assert config.ovs_allowed_media_hosts == frozenset({"a.example.com", "b.example.com"})
    assert "one" not in repr(config)  # secrets never printed
    monkeypatch.setenv("WEBHOOK_SCHEMES", "mitlearn,hmac-md5")
    with pytest.raises(ValueError, match="unknown WEBHOOK_SCHEMES"):
        webhook_config()


def test_workflow_ids_are_deterministic_and_bounded():
    short = targets.workflow_id(targets.INGEST_ARCHIVE, "mit_edx", "a/b.tar.gz")
    assert short == "webhook/content_files/mit_edx/a/b.tar.gz"
    long_a = targets.workflow_id(targets.INGEST_ARCHIVE, "mit_edx", "x" * 900 + "a")
    long_b = targets.workflow_id(targets.INGEST_ARCHIVE, "mit_edx", "x" * 900 + "b")
    assert long_a != long_b and len(long_a) < 300
    assert long_a == targets.workflow_id(targets.INGEST_ARCHIVE, "mit_edx", "x" * 900 + "a")
    assert len({t.workflow for t in targets.ALL_TARGETS}) == len(targets.ALL_TARGETS)


async def test_memory_delivery_store_is_bounded_and_claims_once():
    store = MemoryDeliveryStore(max_entries=2)
    for i in range(3):
        assert await store.claim(f"/p|id|msg_{i}", Seen("d", f"wf{i}"), 60) is None
    assert len(store) == 2
    assert await store.claim("/p|id|msg_2", Seen("d", "other"), 60) == Seen("d", "wf2")
    await store.release("/p|id|msg_2")  # a failed start: the next delivery may try again
    assert await store.claim("/p|id|msg_2", Seen("d", "wf2b"), 60) is None
