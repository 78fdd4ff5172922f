"""jobs_api.webhooks: a receiver's check of a delivery's Standard Webhooks signature, offline."""

import base64
import json
import unittest
from typing import Dict

from jobs_api.webhooks import WebhookVerificationError, sign, verify

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode("ascii")
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode("ascii")
BODY = json.dumps({"type": "job.completed", "timestamp": "2026-12-03T08:00:00.000Z", "data": {"jobId": "scan_x", "state": "completed"}}).encode()
NOW = 1_800_000_000


def headers(secret: str = SECRET, timestamp: int = NOW, body: bytes = BODY, extra: str = "") -> Dict[str, str]:
    signature = sign(secret, "msg_1", timestamp, body)
    return {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(timestamp), "Webhook-Signature": (extra + " " + signature).strip()}


class VerifyTest(unittest.TestCase):
    def test_a_delivery_signed_with_the_secret_is_its_event(self) -> None:
        self.assertEqual(verify(SECRET, headers(), BODY, now=NOW)["data"]["jobId"], "scan_x")
        self.assertEqual(verify(SECRET, headers(), BODY.decode(), now=NOW + 299)["type"], "job.completed")

    def test_matches_the_specification_s_own_example(self) -> None:
        # From the Standard Webhooks specification.
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        body = b'{"test": 2432232314}'
        self.assertEqual(sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")

    def test_either_of_two_signatures_after_a_rotation_is_enough(self) -> None:
        both = headers(extra=sign(OTHER, "msg_1", NOW, BODY))
        self.assertEqual(verify(SECRET, both, BODY, now=NOW)["type"], "job.completed")
        self.assertEqual(verify(OTHER, both, BODY, now=NOW)["type"], "job.completed")

    def test_refuses_a_changed_body_another_secret_an_old_timestamp_and_missing_headers(self) -> None:
        with self.assertRaises(WebhookVerificationError):
            verify(SECRET, headers(), BODY.replace(b"completed", b"failed"), now=NOW)
        with self.assertRaises(WebhookVerificationError):
            verify(OTHER, headers(), BODY, now=NOW)
        with self.assertRaises(WebhookVerificationError):
            verify(SECRET, headers(), BODY, now=NOW + 301)
        with self.assertRaises(WebhookVerificationError):
            verify(SECRET, {"webhook-id": "msg_1"}, BODY, now=NOW)


if __name__ == "__main__":
    unittest.main()
