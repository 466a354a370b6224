"""A webhook receiver for trying sparkexport's webhooks on one machine (README.md):
`SECRET=whsec_... python3 scripts/webhook_receiver.py PORT` prints one line per delivery,
"<event> <job status> <delivery id> verified|NOT VERIFIED", and answers 204.
Standard library only; the check is docs/webhooks.md's verifier."""
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    fields = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    if not fields.get("t", "").isdigit() or abs(time.time() - int(fields["t"])) > tolerance:
        return False
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", ""))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        verified = verify(os.environ["SECRET"], body, self.headers.get("Sparkexport-Signature", ""))
        event = json.loads(body)
        print(event["event"], event["data"]["status"], event["id"], "verified" if verified else "NOT VERIFIED", flush=True)
        self.send_response(204 if verified else 400)
        self.end_headers()

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
