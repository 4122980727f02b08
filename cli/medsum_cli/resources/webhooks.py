"""Webhook calls: register, list, remove endpoints, rotate their secrets; read and replay deliveries.

``/webhooks`` and ``GET /reports/{id}/deliveries``, built on :class:`~medsum_cli.transport.Transport`.
"""

from __future__ import annotations

from collections.abc import Sequence

from medsum_cli.transport import JSONObject, Transport, segment


class WebhookCalls(Transport):
    """The webhook routes of the API (see :class:`~medsum_cli.transport.Transport` for the parameters)."""

    def create_webhook(self, url: str, event_types: Sequence[str] | None = None) -> JSONObject:
        """Register a webhook endpoint (``POST /webhooks``); the answer holds the secret, once."""
        body: JSONObject = {"url": url}
        if event_types:
            body["event_types"] = [str(t) for t in event_types]
        return self._call("POST", "/webhooks", body=body)

    def list_webhooks(self) -> JSONObject:
        """The caller's endpoints (``GET /webhooks``), without secrets."""
        return self._call("GET", "/webhooks")

    def delete_webhook(self, webhook_id: str) -> None:
        """Remove an endpoint (``DELETE /webhooks/{id}``)."""
        self._call("DELETE", f"/webhooks/{segment(webhook_id)}", expect_body=False)

    def rotate_webhook_secret(self, webhook_id: str) -> JSONObject:
        """A new secret; the previous one keeps signing for 24 hours."""
        return self._call("POST", f"/webhooks/{segment(webhook_id)}/rotate-secret")

    def deliveries(self, report_id: str) -> JSONObject:
        """Delivery attempts of a report's events (``GET /reports/{id}/deliveries``)."""
        return self._call("GET", f"/reports/{segment(report_id)}/deliveries")

    def replay_delivery(self, delivery_id: str) -> JSONObject:
        """Send one delivery again (``POST /webhooks/deliveries/{id}/replay``)."""
        return self._call("POST", f"/webhooks/deliveries/{segment(delivery_id)}/replay")
