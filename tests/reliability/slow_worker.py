"""`manage.py rqworker exports imports` whose reads of stored files are slow, like a slow disk
or a distant S3: every read() of a stored file first sleeps SPX_SLOW_READ_SECONDS.

Run as a script by the reliability tests (never imported by pytest). The work horse RQ forks
inherits the patch, so the worker, the horse and the packaging code are the real ones; only
storage is slower. With SPX_ENTRY_LOG set, each opened entry is appended to that file as
"<unix time> <storage name>", so a test can tell how far packaging went after a cancel.
With SPX_SLOW_STORAGE_READS=1, the other reads of stored files are slow too (an import's).
"""
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparkexport.settings")

import django  # noqa: E402

django.setup()

from exports.packages import contents as package_contents  # noqa: E402

DELAY = float(os.environ["SPX_SLOW_READ_SECONDS"])
ENTRY_LOG = os.environ.get("SPX_ENTRY_LOG")
_open_stream = package_contents.open_stream


class SlowStream:
    def __init__(self, stream):
        self._stream = stream

    def read(self, size=-1):
        time.sleep(DELAY)
        return self._stream.read(size)

    def close(self):
        self._stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def slow_open_stream(storage, name):
    if ENTRY_LOG:
        with open(ENTRY_LOG, "a") as log:
            log.write(f"{time.time():.3f} {name}\n")
    return SlowStream(_open_stream(storage, name))


package_contents.open_stream = slow_open_stream
if os.environ.get("SPX_SLOW_STORAGE_READS"):
    # Every other read of a stored file too: an import's copy of its package from S3.
    from sparkexport import storage  # noqa: E402

    _storage_open_stream = storage.open_stream
    storage.open_stream = lambda storage_, name: SlowStream(_storage_open_stream(storage_, name))

from django.core.management import execute_from_command_line  # noqa: E402

execute_from_command_line(["manage.py", "rqworker", "exports", "imports"])
