"""Verify the webhooks the API delivers (Standard Webhooks), in a receiver, with the standard library only.

    from jobs_api.webhooks import verify, WebhookVerificationError

    try:
        event = verify(secret, request.headers, request.body)   # the exact bytes received
    except WebhookVerificationError:
        return 400
    if seen(event_id := request.headers["webhook-id"]):          # at least once: drop repeats by webhook-id
        return 204
    handle(event["type"], event["data"])

The signature is `v1,` and the base64 HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>`, keyed with
the base64-decoded part of the secret after `whsec_`. For 24 hours after a rotation the header carries two
signatures; any one that matches is enough. A timestamp further than `tolerance_sec` from now is refused, so a
captured delivery cannot be replayed later.
"""

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Dict, Mapping, Optional, Union

__all__ = ["WebhookVerificationError", "sign", "verify"]

DEFAULT_TOLERANCE_SEC = 300


class WebhookVerificationError(Exception):
    """The delivery is not one the API signed with this secret (or it is too old or too new)."""


def _key(secret: str) -> bytes:
    raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as err:
        raise ValueError("the secret must be whsec_ and base64, as the API showed it") from err


def sign(secret: str, msg_id: str, timestamp: int, body: Union[bytes, str]) -> str:
    """The `v1,<base64>` signature of a delivery (for tests of a receiver)."""
    payload = body.encode("utf-8") if isinstance(body, str) else body
    mac = hmac.new(_key(secret), msg_id.encode("utf-8") + b"." + str(timestamp).encode("ascii") + b"." + payload, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def _header(headers: Mapping[str, str], name: str) -> str:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    raise WebhookVerificationError("missing header " + name)


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: Union[bytes, str],
    *,
    tolerance_sec: int = DEFAULT_TOLERANCE_SEC,
    now: Optional[float] = None,
) -> Dict[str, Any]:
    """The delivery's event (`{"type", "timestamp", "data"}`) when it is signed with `secret`; raises otherwise."""
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError as err:
        raise WebhookVerificationError("webhook-timestamp is not a number of seconds") from err
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_sec:
        raise WebhookVerificationError("webhook-timestamp is more than {} s away from now".format(tolerance_sec))
    expected = sign(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures.split(" ") if candidate.startswith("v1,")):
        raise WebhookVerificationError("no signature matches this secret")
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    event = json.loads(text)
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not an event object")
    return event
