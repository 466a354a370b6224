import hashlib
import io
import os
import shutil
import subprocess
import tracemalloc
import zipfile
import zlib

import pytest

from exports.packages import writer as packaging
from exports.packages.writer import (
    Entry,
    EntryChanged,
    PackageResult,
    PackageTooLarge,
    PackagingError,
    PackagingStopped,
    UnsafeEntryPath,
    bytes_entry,
    should_store,
    write_package,
)

END_OF_CENTRAL_DIR = b"PK\x05\x06"
JSON = b'{"name": "neuron", "version": "1.0.0"}\n' * 50
WASM = b"\x00asm\x01\x00\x00\x00" + bytes(range(256)) * 40


def sample_entries():
    return [
        bytes_entry("manifest.json", JSON),
        bytes_entry("folder/service/1.0.0/neuron.zip", b"PK\x05\x06" + bytes(18)),
        bytes_entry("folder/service/1.0.0/model.wasm", WASM),
        bytes_entry("folder/service/1.0.0/model.xlsx", b"xlsx-bytes" * 100),
        bytes_entry("empty.txt", b""),
    ]


def build(entries, **kwargs):
    out = io.BytesIO()
    result = write_package(entries, out, **kwargs)
    return out.getvalue(), result


class TrackingFile(io.BytesIO):
    def __init__(self, data, log, path):
        super().__init__(data)
        self._log = log
        self._path = path

    def close(self):
        if not self.closed:
            self._log.append(("closed", self._path))
        super().close()


def tracked_entry(path, data, log, **kwargs):
    def opener():
        log.append(("opened", path))
        return TrackingFile(data, log, path)

    return Entry(path=path, size=kwargs.pop("size", len(data)), open=opener, **kwargs)


class WriteOnly:
    """An output that cannot tell() or seek(), like a pipe."""

    def __init__(self):
        self.buf = bytearray()

    def write(self, data):
        self.buf += data
        return len(data)


class Discard:
    def __init__(self):
        self.size = 0

    def write(self, data):
        self.size += len(data)
        return len(data)


class PatternStream(io.RawIOBase):
    """Produces `size` bytes on demand without ever holding them."""

    def __init__(self, size, block=bytes(range(256)) * 256):
        self.remaining = size
        self.block = block

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.remaining)
        view = memoryview(b)
        pos = 0
        while pos < n:
            step = min(len(self.block), n - pos)
            view[pos : pos + step] = self.block[:step]
            pos += step
        self.remaining -= n
        return n


def test_repeat_is_byte_identical():
    first, r1 = build(sample_entries())
    second, r2 = build(sample_entries())
    assert first == second
    assert r1 == r2


def test_order_is_the_callers():
    entries = sample_entries()
    forward, _ = build(entries)
    backward, _ = build(list(reversed(entries)))
    assert forward != backward
    with zipfile.ZipFile(io.BytesIO(backward)) as zf:
        assert zf.namelist() == [e.path for e in reversed(entries)]


def test_result_matches_bytes_in_memory():
    data, result = build(sample_entries())
    assert isinstance(result, PackageResult)
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.entries == 5


def test_result_matches_bytes_on_disk(tmp_path):
    target = tmp_path / "package.zip"
    with open(target, "wb") as out:
        result = write_package(sample_entries(), out)
    data = target.read_bytes()
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert data == build(sample_entries())[0]


def test_unseekable_output_and_data_descriptors():
    out = WriteOnly()
    result = write_package(sample_entries(), out)
    data = bytes(out.buf)
    assert data == build(sample_entries())[0]
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert all(info.flag_bits & 0x08 for info in zf.infolist())


def test_reads_back_with_metadata():
    entries = sample_entries()
    data, _ = build(entries)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert zf.comment == b""
        assert zf.namelist() == [e.path for e in entries]
        for entry in entries:
            info = zf.getinfo(entry.path)
            assert zf.read(info) == entry.open().read()
            assert info.file_size == entry.size
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr == 0o100644 << 16
            assert info.create_system == 3
            assert info.extra == b""
            assert info.comment == b""


def test_store_or_deflate():
    data, _ = build(sample_entries())
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        types = {info.filename: info.compress_type for info in zf.infolist()}
    assert types["folder/service/1.0.0/model.xlsx"] == zipfile.ZIP_STORED
    assert types["folder/service/1.0.0/neuron.zip"] == zipfile.ZIP_STORED
    assert types["manifest.json"] == zipfile.ZIP_DEFLATED
    assert types["folder/service/1.0.0/model.wasm"] == zipfile.ZIP_DEFLATED


def test_should_store():
    for path in ["a.xlsx", "a.xlsm", "a.xlsb", "a.zip", "a.gz", "a.png", "a.jpg", "a.jpeg", "d/B.XLSX"]:
        assert should_store(path), path
    for path in ["a.json", "a.wasm", "a.csv", "a.txt", "xlsx", "a.zip.json"]:
        assert not should_store(path), path


def test_compresslevel_is_applied():
    entries = [bytes_entry("data.json", JSON * 20)]
    level0, _ = build(entries, compresslevel=0)
    level9, _ = build(entries, compresslevel=9)
    assert len(level9) < len(level0)
    with zipfile.ZipFile(io.BytesIO(level0)) as zf:
        assert zf.read("data.json") == JSON * 20


def test_empty_package():
    data, result = build([])
    assert result.entries == 0
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == []


def test_bytes_entry():
    entry = bytes_entry("manifest.json", b"{}")
    assert entry.size == 2
    assert entry.sha256 == hashlib.sha256(b"{}").hexdigest()
    with entry.open() as f1, entry.open() as f2:
        assert f1.read() == f2.read() == b"{}"


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/etc/passwd",
        "C:/x.json",
        "c:x.json",
        "..",
        "../x.json",
        "a/../../x.json",
        ".",
        "./x.json",
        "a/./x.json",
        "a//x.json",
        "a/",
        "a\\x.json",
        "a\x00.json",
        "a\nb.json",
        "a\x1fb.json",
        "a\x7fb.json",
        "a\x85b.json",  # C1 (NEL): the same rule as the reader's and the catalog's
    ],
)
def test_unsafe_paths_rejected_before_writing(path):
    log = []
    entries = [tracked_entry("ok.json", b"{}", log), tracked_entry(path, b"{}", log)]
    out = io.BytesIO()
    with pytest.raises(UnsafeEntryPath):
        write_package(entries, out)
    assert out.getvalue() == b""
    assert log == []


def test_duplicate_paths_rejected():
    out = io.BytesIO()
    entries = [bytes_entry("a/x.json", b"1"), bytes_entry("a/y.json", b"2"), bytes_entry("a/x.json", b"3")]
    with pytest.raises(UnsafeEntryPath, match="duplicate"):
        write_package(iter(entries), out)
    assert out.getvalue() == b""


def test_duplicates_are_case_sensitive():
    data, result = build([bytes_entry("a.json", b"1"), bytes_entry("A.json", b"2")])
    assert result.entries == 2


def test_exceptions_share_a_base():
    for exc in (UnsafeEntryPath, EntryChanged, PackageTooLarge, PackagingStopped):
        assert issubclass(exc, PackagingError)


@pytest.mark.parametrize("declared", [9, 11])
def test_size_mismatch(declared):
    log = []
    entries = [bytes_entry("ok.json", b"{}"), tracked_entry("dir/data.json", b"0123456789", log, size=declared)]
    out = io.BytesIO()
    with pytest.raises(EntryChanged) as info:
        write_package(entries, out)
    message = str(info.value)
    assert "dir/data.json" in message and str(declared) in message
    assert ("closed", "dir/data.json") in log
    # No central directory is written after a failure: the partial output is not a valid ZIP.
    assert END_OF_CENTRAL_DIR not in out.getvalue()


def test_sha_mismatch():
    wrong = hashlib.sha256(b"other").hexdigest()
    real = hashlib.sha256(b"data").hexdigest()
    entry = Entry(path="x.json", size=4, open=lambda: io.BytesIO(b"data"), sha256=wrong)
    with pytest.raises(EntryChanged) as info:
        write_package([entry], io.BytesIO())
    message = str(info.value)
    assert "x.json" in message and wrong in message and real in message


def test_a_recorded_crc32_is_the_check_and_spares_the_second_hash():
    crc = zlib.crc32(b"data")
    wrong_sha = hashlib.sha256(b"other").hexdigest()
    # With its CRC-32 known, the member is checked against it (which the ZIP computes anyway),
    # not hashed a second time: the SHA-256 is not even read.
    entry = Entry(path="x.zip", size=4, open=lambda: io.BytesIO(b"data"), sha256=wrong_sha, crc32=crc)
    data, result = build([entry])
    assert result.crc32 == {"x.zip": crc}
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo("x.zip").CRC == crc


def test_crc32_mismatch_fails_and_leaves_no_valid_zip():
    entry = Entry(path="x.zip", size=4, open=lambda: io.BytesIO(b"data"), crc32=zlib.crc32(b"dat!"))
    out = io.BytesIO()
    with pytest.raises(EntryChanged) as info:
        write_package([entry, bytes_entry("later.json", b"{}")], out)
    assert "x.zip" in str(info.value) and "CRC-32" in str(info.value)
    assert END_OF_CENTRAL_DIR not in out.getvalue()


def test_sha_matches_case_insensitively():
    upper = hashlib.sha256(b"data").hexdigest().upper()
    entry = Entry(path="x.json", size=4, open=lambda: io.BytesIO(b"data"), sha256=upper)
    assert build([entry])[1].entries == 1


def test_package_too_large():
    entries = [bytes_entry("big.zip", os.urandom(10_000)), bytes_entry("next.json", b"{}")]
    out = io.BytesIO()
    with pytest.raises(PackageTooLarge) as info:
        write_package(entries, out, max_size=5_000)
    assert info.value.limit == 5_000
    assert "5000" in str(info.value)
    assert len(out.getvalue()) <= 5_000
    assert END_OF_CENTRAL_DIR not in out.getvalue()


def test_generous_max_size():
    data, result = build(sample_entries())
    again, _ = build(sample_entries(), max_size=len(data))
    assert again == data


def test_should_stop_on_second_entry():
    log = []
    calls = []

    def should_stop():
        calls.append(1)
        return "cancelled" if len(calls) == 2 else None

    entries = [tracked_entry(f"{name}.json", b"{}", log) for name in ("first", "second", "third")]
    out = io.BytesIO()
    with pytest.raises(PackagingStopped) as info:
        write_package(entries, out, should_stop=should_stop)
    assert info.value.reason == "cancelled"
    assert log == [("opened", "first.json"), ("closed", "first.json")]
    assert END_OF_CENTRAL_DIR not in out.getvalue()


def test_should_stop_between_chunks(monkeypatch):
    now = [0.0]

    def clock():
        now[0] += 0.1
        return now[0]

    monkeypatch.setattr(packaging, "_clock", clock)
    calls = []

    def should_stop():
        calls.append(1)
        return "deadline" if len(calls) > 1 else False

    log = []
    entry = tracked_entry("big.json", b"x" * 100, log)
    with pytest.raises(PackagingStopped) as info:
        write_package([entry], io.BytesIO(), should_stop=should_stop, chunk_size=10)
    assert info.value.reason == "deadline"
    assert log == [("opened", "big.json"), ("closed", "big.json")]


def test_large_member_round_trip_and_files_closed():
    log = []
    payload = os.urandom(5 * 1024 * 1024)
    entries = [
        tracked_entry("a/big.zip", payload, log, sha256=hashlib.sha256(payload).hexdigest()),
        tracked_entry("a/small.json", JSON, log),
    ]
    data, result = build(entries)
    assert log == [
        ("opened", "a/big.zip"),
        ("closed", "a/big.zip"),
        ("opened", "a/small.json"),
        ("closed", "a/small.json"),
    ]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert zf.getinfo("a/big.zip").compress_type == zipfile.ZIP_STORED
        assert zf.read("a/big.zip") == payload
        assert zf.read("a/small.json") == JSON


def test_unzip_accepts_archive(tmp_path):
    assert shutil.which("unzip"), "Info-ZIP unzip is needed (.ci/run installs it)"
    target = tmp_path / "package.zip"
    with open(target, "wb") as out:
        write_package(sample_entries(), out)
    proc = subprocess.run(["unzip", "-t", str(target)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No errors detected" in proc.stdout


@pytest.mark.parametrize("path", ["stream/huge.zip", "stream/huge.bin"])
def test_memory_stays_bounded(path):
    size = 64 * 1024 * 1024
    entry = Entry(path=path, size=size, open=lambda: PatternStream(size))
    sink = Discard()
    tracemalloc.start()
    try:
        result = write_package([entry], sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == sink.size
    assert peak < 16 * 1024 * 1024, peak
