"""`make test` on a machine where no PostgreSQL or Redis answers: it starts throwaway ones,
runs the tests against them, and leaves no process or directory behind.

"Nothing answers" is made real with a network namespace of the test's own (its loopback has
no servers), as root or, for anyone else, inside a user namespace.
"""
import importlib.util
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT

SELECTION = "tests/test_settings.py"


def _isolated_network() -> list[str]:
    """A command prefix: a network namespace whose loopback is up and empty. Root makes one
    directly; anyone else becomes root of a user namespace to make it, then themselves again
    in a nested one (PostgreSQL refuses to run as root)."""
    if os.geteuid() == 0:
        return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    back_to_self = f"unshare --user --map-user={os.getuid()} --map-group={os.getgid()}"
    return ["unshare", "--map-root-user", "--net", "sh", "-c", f'ip link set lo up && exec {back_to_self} "$@"', "sh"]


def _environment_without_servers() -> dict:
    """Ours, less what would point the inner run at our servers (MAKEFLAGS carries `make
    test TEST_DATABASE_URL=...` from the make that runs this suite)."""
    dropped = {"TEST_DATABASE_URL", "TEST_REDIS_URL", "DATABASE_URL", "REDIS_URL", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    return {name: value for name, value in os.environ.items() if name not in dropped}


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.mark.e2e
def test_make_test_starts_its_own_servers_when_none_answers_and_leaves_nothing():
    result = subprocess.run(
        [*_isolated_network(), "make", "-o", ".venv/.installed", "test", f"PYTEST_ARGS=-q -p no:cacheprovider {SELECTION}"],
        cwd=ROOT,
        env=_environment_without_servers(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(r"\d+ passed", output) and "failed" not in output, output[-4000:]

    started = dict(re.findall(r"started (PostgreSQL|Redis) on 127\.0\.0\.1:\d+ in (\S+)", output))
    assert set(started) == {"PostgreSQL", "Redis"}, output[-4000:]
    for server, directory in started.items():
        assert not Path(directory).exists(), f"{server}'s directory {directory} was left behind"
        assert _processes_mentioning(directory) == [], f"{server} is still running"


def _load_script():
    spec = importlib.util.spec_from_file_location("test_services", ROOT / "scripts" / "test_services.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_the_binaries_it_names_the_command_that_installs_them(monkeypatch, capsys):
    script = _load_script()
    monkeypatch.setattr(script, "_answers", lambda url: False)
    monkeypatch.setattr(script.shutil, "which", lambda name: None)
    monkeypatch.setattr(script.glob, "glob", lambda pattern: [])
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)

    assert script.main(["true"]) == 2

    message = capsys.readouterr().err
    assert "apt-get install -y postgresql redis-server" in message
    assert "brew install postgresql@16 redis" in message
    assert "Traceback" not in message


def test_a_named_server_that_does_not_answer_is_an_error_not_a_substitute(monkeypatch, capsys):
    script = _load_script()
    monkeypatch.setenv("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")

    assert script.main(["true"]) == 2

    assert "TEST_DATABASE_URL names 127.0.0.1:1, which does not answer" in capsys.readouterr().err
