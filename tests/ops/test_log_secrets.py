"""The run-wide secrets-in-logs check (tests/log_secrets.py): what it finds, that the suite's
secrets reach it, and that a leak fails the run."""
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests import log_secrets
from tests.e2e.conftest import ROOT, process_env
from tests.exports.api_helpers import close_job, make_job
from tests.factories import make_api_key
from tests.reliability.conftest import private_redis  # noqa: F401  fixture

SECRET = "Zq3_vK9-x2LmP0aB7cD4eF6gH8iJ1kL5"


def leaks_in(tmp_path, text: str, **secrets) -> list[str]:
    log = tmp_path / "some.log"
    log.write_text(text)
    return log_secrets.leaks(secrets or {SECRET: "API key"}, [log])


@pytest.mark.parametrize("text", [
    f"key {SECRET}\n",
    f'{{"message": "token:\\n{SECRET}"}}\n',
    f"GET /x?token=key%3A12%3A{SECRET} 200\n",
    f"prefix.{SECRET}.",
    f'"Bearer {SECRET}"',
])
def test_a_secret_standing_as_a_word_is_found(tmp_path, text):
    assert leaks_in(tmp_path, text) == [f"API key {SECRET[:4]}… in {tmp_path / 'some.log'}, line 1"]


@pytest.mark.parametrize("text", [SECRET[:-1], f"x{SECRET}", f"{SECRET}x", "nothing here"])
def test_a_secret_inside_another_word_or_cut_is_not(tmp_path, text):
    assert leaks_in(tmp_path, text) == []


def test_a_password_with_any_characters_is_found_as_text(tmp_path):
    assert leaks_in(tmp_path, "login as bob / 'hunter 2!' failed", **{"hunter 2!": "password"})


def test_short_or_word_only_values_are_not_searched_for():
    secrets = log_secrets.Secrets()
    for value in ("short1", "password", "Supervisor", None, 12345678):
        secrets.add("password", value)
    secrets.add("password", "pw-123456")
    assert secrets.kinds == {"pw-123456": "password"}


def test_printed_json_secrets_are_recorded():
    secrets = log_secrets.Secrets()
    secrets.add_printed('{"api_key": "3f2a9c1b7d4e.%s", "client_id": "x", "client_secret": "cs-%s"}' % (SECRET, SECRET))
    secrets.add_printed("not json")
    assert secrets.kinds == {SECRET: "API key", f"cs-{SECRET}": "OAuth client secret"}


@pytest.mark.django_db
def test_the_suites_secrets_are_recorded_where_they_are_made(tenant, api):
    from django.contrib.auth import get_user_model

    from tenants.services import member_add, oauth_client_create

    key = make_api_key(tenant, name="recorded")
    member_add(tenant=tenant, username="robot", password="robot-pass-1")
    _, client_id, client_secret = oauth_client_create(tenant=tenant, name="recorded", username="robot")
    token = api.post(f"/auth/realms/{tenant.slug}/protocol/openid-connect/token",
                     {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}).json()
    get_user_model().objects.create_user(username="other", password="other-pass-2")
    job = make_job(tenant)
    close_job(job.pk)
    link = api.get(api.api(f"export/{job.pk}/status")).json()["outputs"]["files"][0]["file"]
    recorded = log_secrets.SECRETS.kinds
    assert recorded[parse_qs(urlparse(link).query)["token"][0].rpartition(":")[2]] == "download link signature"
    assert recorded[key.partition(".")[2]] == "API key"
    assert client_secret in recorded  # (also hashed by make_password, which may name it first)
    assert recorded["robot-pass-1"] == recorded["other-pass-2"] == "password"
    assert recorded[token["access_token"]] == "bearer token"


LEAKY_TEST = '''
import logging
from tests import log_secrets

def test_logs_a_secret():
    log_secrets.SECRETS.add("API key", "{secret}")
    logging.getLogger("leaky").warning("the key is %s", "{secret}")
'''


@pytest.mark.e2e
@pytest.mark.parametrize("parallel", [[], ["-n", "2"]], ids=["one process", "two xdist workers"])
def test_a_run_that_logs_a_secret_fails(tmp_path, private_redis, parallel):
    """A passing test that logs a secret fails the run, naming it but not showing it, whether
    it ran in the controller or in a parallel worker. (A Redis of its own: the inner run's
    workers empty their databases.)"""
    leaky = ROOT / "tests" / "ops" / f"leaky_{tmp_path.name}.py"
    leaky.write_text(LEAKY_TEST.format(secret=SECRET))
    env = {**process_env(), "REDIS_URL": private_redis.url.rsplit("/", 1)[0] + "/15"}
    try:
        run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *parallel, str(leaky)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    finally:
        leaky.unlink()
    assert "1 passed" in run.stdout, run.stdout + run.stderr
    assert run.returncode == 1, run.stdout
    assert re.search(r"secrets in logs: \d+ secrets searched for in \d+ files \(.*\): 1 found, the run fails", run.stdout)
    assert f"API key {SECRET[:4]}…" in run.stdout and SECRET not in run.stdout
    kept = re.search(r"all log records of a process of this run: (\S+)\)", run.stdout).group(1)
    shutil.rmtree(Path(kept))
