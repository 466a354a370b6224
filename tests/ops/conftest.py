"""What the observability tests share: reading a scrape, capturing log lines as JSON, and the
process fixtures of the reliability suite."""
import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sparkexport.logs import JsonFormatter
from tests.reliability.conftest import private_redis, processes  # noqa: F401  (fixtures)


def parse_scrape(text: str) -> dict:
    """{(sample name, sorted label pairs): value} of a scrape in Prometheus' text format."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    """A sample's value; 0 when the series does not exist yet (a counter never moved)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def label_values(samples: dict) -> set[str]:
    return {label for (_, labels) in samples for _, label in labels}


class JsonLines(logging.Handler):
    """Every record formatted by the product's JSON formatter, parsed back."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))

    def of(self, logger: str) -> list[dict]:
        return [line for line in self.lines if line["logger"] == logger]


@pytest.fixture
def json_lines():
    handler = JsonLines()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
