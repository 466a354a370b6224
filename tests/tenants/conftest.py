from pathlib import Path

import pytest

from tenants import artifacts


@pytest.fixture
def workbook(tmp_path) -> Path:
    path = tmp_path / "in" / "term-life.xlsx"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(artifacts.make_demo_workbook("term-life", "1.0.0"))
    return path


@pytest.fixture
def neuron(tmp_path) -> Path:
    path = tmp_path / "in" / "neuron.zip"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(artifacts.make_demo_neuron("term-life", "1.0.0"))
    return path
