"""Production settings refuse unsafe configurations with a message that says what to set."""
import os
import re
import secrets
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


def deploy_check(**env) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_URL", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env={**clean, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "REDIS_URL": "redis://127.0.0.1:6379/15",
             "DATABASE_URL": "sqlite:///:memory:", "DJANGO_ALLOWED_HOSTS": "spark.example.com", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout + result.stderr


def test_check_deploy_is_clean_with_the_guides_https_settings():
    out = deploy_check(DJANGO_HTTPS="1", DJANGO_HSTS_SECONDS="31536000",
                       DJANGO_HSTS_INCLUDE_SUBDOMAINS="1", DJANGO_HSTS_PRELOAD="1")
    assert "no issues" in out, out


def test_every_check_deploy_warning_is_explained_in_the_deployment_guide():
    """Production settings without HTTPS: each warning is one the guide explains."""
    warnings = set(re.findall(r"\(([\w.]+\.[WE]\d+)\)", deploy_check()))
    assert warnings, "check --deploy found nothing to explain: update the guide's table"
    guide = (ROOT / "docs" / "deployment.md").read_text()
    explained = set(re.findall(r"security\.W\d+", guide)) | {
        f"security.{code}" for code in re.findall(r"`(W\d+)`", guide)
    }
    assert warnings <= explained, warnings - explained
