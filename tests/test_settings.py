"""Production settings refuse unsafe configurations with a message that says what to set."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_settings(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_URL"))}
    return subprocess.run(
        [sys.executable, "-c", "import sparkexport.settings"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_mode_needs_a_secret_key():
    result = load_settings(DJANGO_DEBUG="0", REDIS_URL="redis://127.0.0.1:6379/15")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_production_mode_refuses_the_in_process_queue():
    result = load_settings(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "REDIS_URL is not set" in result.stderr


def test_development_mode_runs_without_redis_or_secret():
    assert load_settings(DJANGO_DEBUG="1").returncode == 0


def test_production_mode_with_redis_and_secret_loads():
    assert load_settings(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="x" * 50, REDIS_URL="redis://127.0.0.1:6379/15").returncode == 0
