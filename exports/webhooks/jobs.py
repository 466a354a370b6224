"""The RQ entry point of the `webhooks` queue (queued by exports/webhooks/delivery.py by name)."""
from exports.webhooks.delivery import endpoint_drain
from sparkexport.logs import log_context


def webhook_endpoint_drain_job(endpoint_id: str) -> int:
    """Send one endpoint's due webhook deliveries, in order."""
    with log_context(webhook_endpoint=endpoint_id):
        return endpoint_drain(endpoint_id)
