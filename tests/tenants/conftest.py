import os
from pathlib import Path

import pytest
from django.conf import settings

from tenants import demo


def stored_files() -> list[str]:
    """Every file under MEDIA_ROOT, relative to it, sorted."""
    root = Path(settings.MEDIA_ROOT)
    if not root.exists():
        return []
    return sorted(str(Path(d, f).relative_to(root)) for d, _, files in os.walk(root) for f in files)


@pytest.fixture
def workbook(tmp_path) -> Path:
    path = tmp_path / "in" / "term-life.xlsx"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(demo.make_demo_workbook("term-life", "1.0.0"))
    return path


@pytest.fixture
def neuron(tmp_path) -> Path:
    path = tmp_path / "in" / "neuron.zip"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(demo.make_demo_neuron("term-life", "1.0.0"))
    return path
