"""The README's snippets, run as a newcomer would run them, against a live server and a worker.

Every block the README marks `<!-- readme-test: NAME -->` is taken from README.md as it is: the
shell blocks in one bash session (they build on each other), the Python SDK block as written
(API key) and with its OAuth alternative. Only what differs on a test machine is replaced: the
server's address and the Python of the virtual environment.
The TypeScript block needs `@cspark/sdk`, which this machine's npm registry does not carry; it
was checked by hand against the SDK built from its source (see the README).
"""
import os
import re
import subprocess
import sys

import pytest
from django.core.management import call_command

from tenants.models import Tenant
from tenants.services import member_add, oauth_client_create
from tests.e2e.conftest import ROOT, process_env
from tests.factories import make_api_key
from tests.reliability.conftest import free_port, processes  # noqa: F401  fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

README_BASE = "http://127.0.0.1:8000"
BLOCK = re.compile(r"<!-- readme-test: (?P<name>[\w-]+) -->\n```(?P<lang>\w+)\n(?P<code>.*?)\n```", re.S)


def readme_blocks() -> dict[str, str]:
    return {match["name"]: match["code"] for match in BLOCK.finditer((ROOT / "README.md").read_text())}


def oauth_variant(code: str) -> str:
    """The block with its `# or: Client(...)` alternative in place of the API-key client."""
    lines = code.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# or: "))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("#"))
    alternative = "\n".join(line[2:].removeprefix("or: ") for line in lines[start:end])
    client_line = next(i for i, line in enumerate(lines) if line.startswith("spark = Client("))
    return "\n".join(lines[:client_line] + [f"spark = {alternative.strip()}"] + lines[end:])


@pytest.fixture
def demo(processes, tmp_path):  # noqa: F811
    """Tenant `demo` as `make run` seeds it, its credentials in the environment, a server and a worker."""
    call_command("demo_seed", "demo", verbosity=0)
    tenant = Tenant.objects.get(slug="demo")
    tenant.export_api_job_limit = 5
    tenant.save()
    member_add(tenant=tenant, username="ci-robot")
    _, client_id, client_secret = oauth_client_create(tenant=tenant, name="demo-client", username="ci-robot")
    server = processes.server(workers=1, threads=4)
    processes.worker(webhooks=True, WEBHOOK_ALLOW_PRIVATE_NETWORKS="1")  # the README's webhook receiver is on this machine
    env = {
        **process_env(),
        "API_KEY": make_api_key(tenant, name="demo-key"),
        "CLIENT_ID": client_id,
        "CLIENT_SECRET": client_secret,
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
    }
    return server.base_url, env


def localised(code: str, base_url: str) -> str:
    code = re.sub(r"\b8001\b", str(free_port()), code.replace(README_BASE, base_url))  # the webhook receiver's port
    code = code.replace(" scripts/", f" {ROOT}/scripts/")
    return code.replace(".venv/bin/python manage.py", f"{sys.executable} {ROOT / 'manage.py'}")


def run(args, code: str, env: dict, cwd) -> str:
    result = subprocess.run(args, input=code, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_shell_walk_through_runs_as_written(demo, tmp_path):
    base_url, env = demo
    blocks = readme_blocks()
    names = ("walkthrough", "import", "oauth", "dependencies", "cancel", "webhooks")
    script = "\n".join(localised(blocks[name], base_url) for name in names)
    out = run(["bash", "-euo", "pipefail"], script, env, tmp_path)
    lines = out.splitlines()
    assert "closed" in lines and "package.zip: OK" in lines
    assert '"dry_run":true' in out and "pricing/home-cover-copy" in out  # the import's plan
    assert '"in_progress_exports"' in out  # the bearer token was accepted
    assert "motor/rating[1.0.0] calls motor/rate-table[1] -> motor/rate-table[1.1.0] True" in lines
    assert "cancelled" in lines
    event, status, delivery_id, verified = lines[-1].split()
    assert (event, status, verified) == ("export.closed", "closed", "verified")


@pytest.mark.parametrize("credential", ["api key", "oauth"])
def test_the_python_sdk_snippet_runs_as_written(demo, tmp_path, credential):
    base_url, env = demo
    code = localised(readme_blocks()["python-sdk"], base_url)
    if credential == "oauth":
        code = oauth_variant(code)
        assert "oauth=" in code and "api_key=" not in code.replace("# ", "")
    out = run([sys.executable, "-"], code, env, tmp_path)
    assert out.split()[0] == "closed" and "pricing/home-cover-sdk" in out
    assert (tmp_path / "home-cover.zip").stat().st_size > 0
