"""docs/deployment.md lists every environment variable the code reads."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READS = re.compile(r"""(?:os\.environ(?:\.get)?\(|os\.environ\[|env_bool\(|env_list\()\s*["']([A-Z][A-Z0-9_]+)["']""")
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}  # Django's own, set by manage.py and wsgi.py


def variables_read() -> set[str]:
    sources = [*ROOT.glob("sparkexport/**/*.py"), *ROOT.glob("tenants/**/*.py"), *ROOT.glob("exports/**/*.py"),
               ROOT / "Procfile", ROOT / "scripts" / "run.sh", *ROOT.glob("gunicorn.conf.py")]
    found = set()
    for path in sources:
        text = path.read_text()
        found |= set(READS.findall(text))
        if path.suffix != ".py":
            found |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+):-", text))  # variables with defaults
    return found - NOT_SETTINGS


def test_every_environment_variable_is_in_the_deployment_guide():
    guide = (ROOT / "docs" / "deployment.md").read_text()
    table = guide[guide.index("## Every environment variable"):]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    missing = sorted(variables_read() - documented)
    assert not missing, f"read by the code, missing from docs/deployment.md: {missing}"
    assert {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY"} <= variables_read()
