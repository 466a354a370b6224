"""The run-wide check that no secret reaches a log (wired in tests/conftest.py).

While the suite runs, every record that reaches the root logger is written, formatted as
production formats it (sparkexport.logs.JsonFormatter, traceback included), to one file; and
every secret the suite makes is collected where it is made: API keys, OAuth client
secrets and webhook signing secrets from the services that make them, passwords when they are hashed, bearer tokens
when their row is saved, download-link signatures when a link is signed, and what
`manage.py ... --json` subprocesses print. At the end of the session that file, and the
output of every process the tests started (`*.log` under pytest's temporary directory), are
searched for each of them.

A secret is found when it stands in a line as a word of its own: bounded by any character
outside [A-Za-z0-9_-], JSON and URL escapes counting as boundaries. Random secrets can only
match where they were written, so the check cannot fail by chance; secrets shorter than
MIN_LENGTH or made of letters only (a test's "password") are not searched for.
"""
import functools
import json
import logging
import re
import sys
from pathlib import Path

from django.contrib.auth import hashers
from django.db.models.signals import pre_save
from oauth2_provider.models import AccessToken

from sparkexport.logs import JsonFormatter

MIN_LENGTH = 8
WORD = re.compile(r"[A-Za-z0-9_-]+")
ESCAPES = re.compile(r"\\(?:u[0-9a-fA-F]{4}|.)|%[0-9A-Fa-f]{2}")
PRINTED_SECRET_FIELDS = {"api_key": "API key", "client_secret": "OAuth client secret", "password": "password",
                         "secret": "webhook secret"}


class Secrets:
    """Every secret the run made, with its kind."""

    def __init__(self):
        self.kinds: dict[str, str] = {}

    def add(self, kind: str, value) -> None:
        if isinstance(value, str) and len(value) >= MIN_LENGTH and not value.isalpha():
            self.kinds.setdefault(value, kind)

    def add_api_key(self, key: str) -> None:
        """`<prefix>.<secret>`: the prefix is public (it names the key in the admin and logs)."""
        self.add("API key", key.partition(".")[2] or key)

    def add_printed(self, stdout: str) -> None:
        """What a `--json` management command printed."""
        try:
            printed = json.loads(stdout)
        except ValueError:
            return
        if isinstance(printed, dict):
            for field, kind in PRINTED_SECRET_FIELDS.items():
                if field == "api_key" and isinstance(printed.get(field), str):
                    self.add_api_key(printed[field])
                elif field in printed:
                    self.add(kind, printed[field])


def _replace_everywhere(original, replacement) -> None:
    """Make every module that imported `original` (from ... import) hold `replacement`."""
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            if value is original:
                namespace[name] = replacement


def _recording(original, record):
    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        record(result)
        return result

    return wrapped


SECRETS = Secrets()


def collect_secrets(secrets: Secrets = SECRETS) -> None:
    """Record every secret where the product makes it, for the rest of the process (once:
    tests/conftest.py is imported twice, as `conftest` and as `tests.conftest`)."""
    if getattr(collect_secrets, "done", False):
        return
    collect_secrets.done = True
    from exports import downloads
    from exports.webhooks import signing
    from tenants import services

    _replace_everywhere(services.apikey_create, _recording(services.apikey_create, lambda made: secrets.add_api_key(made[1])))
    _replace_everywhere(services.oauth_client_create,
                        _recording(services.oauth_client_create, lambda made: secrets.add("OAuth client secret", made[2])))
    _replace_everywhere(downloads.download_token, _recording(
        downloads.download_token, lambda token: secrets.add("download link signature", token.rpartition(":")[2])))
    _replace_everywhere(signing.secret_new, _recording(signing.secret_new, lambda secret: secrets.add("webhook secret", secret)))
    make_password = hashers.make_password

    @functools.wraps(make_password)
    def recording_make_password(password, *args, **kwargs):
        secrets.add("password", password)
        return make_password(password, *args, **kwargs)

    _replace_everywhere(make_password, recording_make_password)  # set_password and create_user

    def bearer_token_saved(sender, instance, **kwargs):
        secrets.add("bearer token", instance.token)
        secrets.add("bearer token", getattr(instance, "_raw_token", None))

    pre_save.connect(bearer_token_saved, sender=AccessToken, weak=False, dispatch_uid="tests.log_secrets")


def capture_handler(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    return handler


def leaks(secrets: dict[str, str], paths) -> list[str]:
    """Where each secret appears in the files, its value cut to 4 characters."""
    words = {secret for secret in secrets if WORD.fullmatch(secret)}
    others = [secret for secret in secrets if secret not in words]
    found = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                hits = words.intersection(WORD.findall(ESCAPES.sub(" ", line)))
                hits.update(secret for secret in others if secret in line)
                found += [f"{secrets[hit]} {hit[:4]}… in {path}, line {number}" for hit in sorted(hits)]
    return found
