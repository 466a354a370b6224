"""Benchmark-only settings: the product's settings with `bench_urls` as the URLconf.

Selected with DJANGO_SETTINGS_MODULE=benchmarks.bench_settings by benchmarks/api_throughput.py
only; the product never serves `bare/`.
"""
from sparkexport.settings import *  # noqa: F403  (a settings overlay)

ROOT_URLCONF = "benchmarks.bench_urls"
