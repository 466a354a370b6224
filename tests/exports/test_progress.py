"""Job progress: published a few times a second by the worker, read by polls (snapshots too),
recorded in the row when the job ends (imports: tests/imports/test_import_progress.py)."""
import io
import threading
import time
import uuid

import pytest
from rq import SimpleWorker

from exports.lifecycle import job_fail, job_start
from exports.models import ExportJob
from sparkexport.job_progress import PUBLISH_INTERVAL, ProgressReporter, live_progress
from sparkexport.progress import JobProgressBar
from tests.exports.api_helpers import post_export
from tests.factories import ServiceVersionFactory

pytestmark = pytest.mark.django_db


def test_a_reporter_publishes_a_few_times_a_second_whatever_the_number_of_entries(job_id):
    reporter = ProgressReporter(job_id, entries_total=10_000, bytes_total=10_000 * 4096)
    started = time.monotonic()
    for _ in range(10_000):
        reporter.advance(entries=1, bytes_=4096)
    elapsed = time.monotonic() - started
    # One when the totals are known, then at most one per interval.
    assert reporter.publications <= 2 + elapsed / PUBLISH_INTERVAL
    published = live_progress(job_id)
    assert published["entries_total"] == 10_000 and published["bytes_total"] == 10_000 * 4096
    assert published["entries_done"] <= 10_000


def test_a_reporter_advanced_from_several_threads_counts_every_step_and_calls_its_listener_once_at_a_time(job_id):
    """An import stores its files on several threads, each advancing the one reporter; its
    listener (a command's progress bar) is not written for threads."""
    inside, overlaps, seen = threading.Lock(), [], []

    def listener(progress):
        if not inside.acquire(blocking=False):
            overlaps.append(progress.entries_done)
            return
        try:
            seen.append(progress.entries_done)
            time.sleep(0.0005)  # a bar redrawing: long enough for another thread to arrive
        finally:
            inside.release()

    reporter = ProgressReporter(job_id, entries_total=4 * 50, bytes_total=4 * 50 * 3, listener=listener)
    threads = [threading.Thread(target=lambda: [reporter.advance(entries=1, bytes_=3) for _ in range(50)])
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert overlaps == []
    assert (reporter.progress.entries_done, reporter.progress.bytes_done) == (200, 600)
    assert seen == list(range(1, 201))  # each step seen once, in order


def test_a_poll_shows_what_the_worker_last_published_even_from_a_snapshot(api, job_id):
    job_start(ExportJob, job_id)
    reporter = ProgressReporter(job_id, entries_total=3, bytes_total=3000, interval=0)
    first = api.get(api.api(f"export/{job_id}/status")).json()["progress"]
    assert first == {"entries_done": 0, "entries_total": 3, "bytes_done": 0, "bytes_total": 3000}
    reporter.advance(entries=1, bytes_=1000)
    second = api.get(api.api(f"export/{job_id}/status")).json()["progress"]  # the snapshot, not the row
    assert second == {"entries_done": 1, "entries_total": 3, "bytes_done": 1000, "bytes_total": 3000}


def test_a_failed_job_keeps_the_figures_it_had_reached(api, job_id, django_capture_on_commit_callbacks):
    job_start(ExportJob, job_id)
    ProgressReporter(job_id, entries_total=4, bytes_total=400, interval=0).advance(entries=1, bytes_=100)
    with django_capture_on_commit_callbacks(execute=True):
        job_fail(ExportJob, job_id, "STORAGE_ERROR", "Reading storage failed.")
    assert ExportJob.objects.get(pk=job_id).progress == {
        "entries_done": 1, "entries_total": 4, "bytes_done": 100, "bytes_total": 400
    }
    assert live_progress(job_id) is None  # the row holds them now
    assert api.get(api.api(f"export/{job_id}/status")).json()["progress"]["entries_done"] == 1


def test_a_closed_export_has_done_every_entry_and_byte(api, tenant, redis_queue, django_capture_on_commit_callbacks):
    versions = [ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="pricing",
                                      service__name="quote", version=f"1.{n}.0") for n in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        job_id = post_export(api, {"inputs": {"folders": ["pricing"]}}).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        SimpleWorker([redis_queue], connection=redis_queue.connection).work(burst=True)

    progress = api.get(api.api(f"export/{job_id}/status")).json()["progress"]
    stored = sum(v.workbook_size + v.neuron_size for v in versions)
    assert progress["entries_total"] == progress["entries_done"] == 1 + 3 * 3  # manifest; version.json, workbook, neuron
    assert progress["bytes_total"] == progress["bytes_done"] > stored  # and the manifest and version.json
    assert live_progress(job_id) is None


def test_a_commands_bar_shows_bytes_and_entries_and_ends_once():
    out = io.StringIO()
    with JobProgressBar(out, "packaged") as bar:
        reporter = ProgressReporter(uuid.uuid4(), entries_total=2, bytes_total=3_000_000, listener=bar)
        reporter.advance(bytes_=3_000_000)  # every byte, one entry still open
        reporter.advance(entries=2)
    lines = out.getvalue().split("\r")
    assert lines[-1] == "[##############################] 3.0 MB/3.0 MB (2/2 entries) packaged\n"
    assert out.getvalue().count("\n") == 1
