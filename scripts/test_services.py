"""Run a command (the test suite) with a PostgreSQL and a Redis it can talk to.

    python scripts/test_services.py COMMAND [ARG ...]

`TEST_DATABASE_URL` and `TEST_REDIS_URL` name the servers; unset, they default to the local
ones the suite always used (127.0.0.1:5432 with trust auth, Redis database 15). A server
named explicitly must answer. A default that does not answer is replaced for this run by a
throwaway one started from the binaries on the machine: a free port, a temporary directory,
stopped and removed when the command ends, however it ends (Ctrl-C included). PostgreSQL
refuses to run as root, so as root its cluster runs as the `postgres` user (or `nobody`).

The command runs with `DATABASE_URL` and `REDIS_URL` set, and this script exits with its code.
Standard library only: it runs before anything else is known to work.
"""
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/sparkexport"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
READY_DEADLINE_SECONDS = 120
STOP_DEADLINE_SECONDS = 30
INSTALL_HINT = (
    "Install them, then run `make test` again:\n"
    "  Debian/Ubuntu: sudo apt-get install -y postgresql redis-server\n"
    "  macOS:         brew install postgresql@16 redis"
)


class SetupError(Exception):
    """The servers cannot be had: the message says what to do."""


def main(command: list[str]) -> int:
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with contextlib.ExitStack() as cleanup:
        workdir = cleanup.enter_context(_scratch_directory())
        try:
            database_url = _database_url(cleanup, workdir)
            redis_url = _redis_url(cleanup, workdir)
        except SetupError as exc:
            print(f"test_services: {exc}", file=sys.stderr)
            return 2
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
        # Ctrl-C reaches the command (our process group): it ends on its own, then we clean up.
        # A handler, not SIG_IGN, which the command would inherit.
        with _handling(signal.SIGINT, lambda *_: None):
            return subprocess.call(command, env=env)


def _database_url(cleanup: contextlib.ExitStack, workdir: Path) -> str:
    if url := _named_or_default("TEST_DATABASE_URL", DEFAULT_DATABASE_URL):
        return url
    bindir = _postgres_bindir()
    port = cleanup.enter_context(_postgres(bindir, workdir / "postgres"))
    return f"postgres://postgres@127.0.0.1:{port}/sparkexport"


def _redis_url(cleanup: contextlib.ExitStack, workdir: Path) -> str:
    if url := _named_or_default("TEST_REDIS_URL", DEFAULT_REDIS_URL):
        return url
    executable = shutil.which("redis-server")
    if executable is None:
        raise SetupError(f"no Redis answers at {DEFAULT_REDIS_URL} and redis-server is not installed.\n{INSTALL_HINT}")
    port = cleanup.enter_context(_redis(executable, workdir / "redis"))
    return f"redis://127.0.0.1:{port}/15"


# --- what answers -------------------------------------------------------------------------


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    default_port = 6379 if parts.scheme.startswith("redis") else 5432
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _answers(url: str) -> bool:
    try:
        with socket.create_connection(_address(url), timeout=1):
            return True
    except OSError:
        return False


def _named_or_default(variable: str, default: str) -> str | None:
    """The server `variable` names (it must answer), else the default if it answers, else None."""
    url = os.environ.get(variable)
    if url and not _answers(url):
        host, port = _address(url)
        raise SetupError(
            f"{variable} names {host}:{port}, which does not answer. Start that server, or unset "
            f"{variable} to let `make test` use the local default or start its own."
        )
    if url:
        return url
    return default if _answers(default) else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until(ready, process: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + READY_DEADLINE_SECONDS
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise SetupError(f"the throwaway {what} did not start; its log ends with:\n{tail}")
        time.sleep(0.1)


# --- throwaway servers, each in a session of its own: a Ctrl-C meant for the tests leaves
# them up until the tests have ended -------------------------------------------------------


@contextlib.contextmanager
def _scratch_directory():
    path = Path(tempfile.mkdtemp(prefix="sparkexport-servers-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _postgres_bindir() -> Path:
    candidates = []
    if pg_config := shutil.which("pg_config"):
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidates.append(found.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += sorted(glob.glob("/opt/homebrew/opt/postgresql*/bin") + glob.glob("/usr/local/opt/postgresql*/bin"))
    if initdb := shutil.which("initdb"):
        candidates.append(str(Path(initdb).resolve().parent))
    for candidate in candidates:
        if candidate and all((Path(candidate) / name).is_file() for name in ("initdb", "postgres")):
            return Path(candidate)
    raise SetupError(
        f"no PostgreSQL answers at {DEFAULT_DATABASE_URL} and its programs (initdb, postgres) "
        f"are not installed.\n{INSTALL_HINT}"
    )


def _version_key(path: str) -> tuple:
    return tuple(int(part) for part in Path(path).parent.name.split(".") if part.isdigit())


def _cluster_owner() -> dict:
    """Whom the cluster runs as: ourselves, or an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            account = pwd.getpwnam(name)
            return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    raise SetupError("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as")


@contextlib.contextmanager
def _postgres(bindir: Path, datadir: Path):
    owner = _cluster_owner()
    datadir.mkdir()
    if owner:
        os.chown(datadir, owner["user"], owner["group"])
    log = datadir.parent / "postgres.log"  # outside the data directory: ours to read
    initdb = subprocess.run(
        [bindir / "initdb", "-D", datadir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
        capture_output=True, text=True, cwd=datadir, **owner,
    )
    if initdb.returncode:
        raise SetupError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
    port = _free_port()
    with open(log, "wb") as log_file:
        # Durability is pointless for a throwaway cluster; turning it off keeps the suite fast.
        server = subprocess.Popen(
            [bindir / "postgres", "-D", datadir, "-p", str(port), "-k", datadir,
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=300"],
            stdout=log_file, stderr=subprocess.STDOUT, cwd=datadir, start_new_session=True, **owner,
        )
    try:
        _wait_until(lambda: _accepts_queries(bindir, port), server, "PostgreSQL", log)
        print(f"test_services: started PostgreSQL on 127.0.0.1:{port} in {datadir.parent}", file=sys.stderr)
        yield port
    finally:
        _stop(server, signal.SIGINT)  # PostgreSQL's "fast" shutdown


def _accepts_queries(bindir: Path, port: int) -> bool:
    """pg_isready when the binaries have it; a TCP answer otherwise (it can precede readiness)."""
    isready = bindir / "pg_isready"
    if isready.is_file():
        return subprocess.run([isready, "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode == 0
    return _answers(f"postgres://127.0.0.1:{port}")


@contextlib.contextmanager
def _redis(executable: str, workdir: Path):
    workdir.mkdir()
    port = _free_port()
    log = workdir / "redis.log"
    server = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir, "--logfile", log],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        _wait_until(lambda: _answers(f"redis://127.0.0.1:{port}"), server, "Redis", log)
        print(f"test_services: started Redis on 127.0.0.1:{port} in {workdir.parent}", file=sys.stderr)
        yield port
    finally:
        _stop(server, signal.SIGTERM)


def _stop(process: subprocess.Popen, signum: int) -> None:
    if process.poll() is None:
        process.send_signal(signum)
    try:
        process.wait(timeout=STOP_DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds: the command is killed, the servers stopped


@contextlib.contextmanager
def _handling(signum: int, handler):
    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
