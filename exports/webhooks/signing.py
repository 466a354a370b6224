"""The Sparkexport-Signature header (docs/webhooks.md has the receiver's side): an HMAC-SHA256
of "<t>.<raw body>" with the endpoint's secret, t the Unix time of the attempt."""
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def secret_new() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
