"""exports.packages.reader: a valid package reads back; every hostile upload is refused with a clear reason."""

import hashlib
import io
import json
import os
import struct
import tracemalloc
import uuid
import zipfile
import zlib
from dataclasses import replace

import pytest

from exports.packages import reader as package_reader
from exports.packages.reader.window import open_stored_member
from exports.packages.reader import (
    MAX_COMPRESSION_RATIO,
    MAX_ENTRIES,
    InvalidPackage,
    Package,
    PackageFile,
    PackageMembers,
    open_member,
    read_package,
)
from exports.packages.writer import Entry, bytes_entry, write_package

LIMIT = 1 << 30  # max_uncompressed_bytes for tests that are not about the total size


def service_id_of(folder: str, service: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{folder}/{service}"))


def json_bytes(value) -> bytes:
    # Same encoding as exports/packages/contents.json_bytes.
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False).encode() + b"\n"


def version_id(n: int) -> str:
    return str(uuid.UUID(int=0x1234_0000_0000_4000_8000_0000_0000_0000 + n))


def fake_workbook(service: str, version: str) -> bytes:
    return b"PK\x03\x04 fake xlsx " + f"{service} {version}".encode() * 20


def fake_neuron(service: str, version: str) -> bytes:
    return b"PK\x03\x04 fake neuron " + f"{service} {version}".encode() * 30


def package_parts(
    versions=(("Pricing", "Motor", "1.0.0"),), *, file_filter="migrate", workbook_name="model.xlsx"
):
    """(manifest dict, entries without the manifest) shaped like exports/packages/contents.py makes them."""
    entries, rows, services = [], [], {}
    for n, (folder, service, version) in enumerate(versions):
        base = f"{folder}/{service}/{version}"
        workbook, neuron = fake_workbook(service, version), fake_neuron(service, version)
        services[(folder, service)] = {
            "service_uri_source": f"{folder}/{service}",
            "folder_source": folder,
            "service_source": service,
            "service_id_source": service_id_of(folder, service),
        }
        service_id = services[(folder, service)]["service_id_source"]
        rows.append(
            {
                "service_uri_source": f"{base.rsplit('/', 1)[0]}[{version}]",
                "folder_source": folder,
                "service_source": service,
                "version_source": version,
                "service_id_source": service_id,
                "version_id_source": version_id(n),
            }
        )
        metadata = {
            "folder": folder,
            "service": service,
            "service_id": service_id,
            "version": version,
            "version_id": version_id(n),
            "release_note": f"release {version}",
            "tags": [],
            "neuron": {
                "name": "neuron.zip",
                "size": len(neuron),
                "sha256": hashlib.sha256(neuron).hexdigest(),
            },
            "workbook": {
                "name": workbook_name,
                "size": len(workbook),
                "sha256": hashlib.sha256(workbook).hexdigest(),
            },
        }
        entries += [
            bytes_entry(f"{base}/version.json", json_bytes(metadata)),
            bytes_entry(f"{base}/{workbook_name}", workbook),
            bytes_entry(f"{base}/neuron.zip", neuron),
        ]
    entries.sort(key=lambda e: e.path)
    manifest = {
        "format": "sparkexport-package",
        "format_version": 1,
        "source_tenant": "acme",
        "file_filter": file_filter,
        "version_filter": "all",
        "services": [services[key] for key in sorted(services)],
        "service_versions": rows,
        "files": [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in entries],
    }
    return manifest, entries


def write(tmp_path, manifest, entries, name="package.zip"):
    """Write a package through the real exporter's ZIP writer."""
    path = tmp_path / name
    all_entries = (
        list(entries)
        if manifest is None
        else [bytes_entry("manifest.json", json_bytes(manifest)), *entries]
    )
    with open(path, "wb") as out:
        write_package(all_entries, out)
    return path


def build(tmp_path, versions=(("Pricing", "Motor", "1.0.0"),), **kwargs):
    manifest, entries = package_parts(versions, **kwargs)
    return write(tmp_path, manifest, entries)


def raw_zip(tmp_path, members, name="raw.zip"):
    """A ZIP written by zipfile directly, for names and attributes write_package refuses."""
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        for member in members:
            info, data = member if isinstance(member, tuple) else (member, b"x")
            zf.writestr(info, data)
    return path


def rejected(path, limit=LIMIT) -> str:
    with pytest.raises(InvalidPackage) as caught:
        read_package(path, max_uncompressed_bytes=limit)
    return str(caught.value)


# ----------------------------------------------------------------------------- valid packages


def test_valid_package_reads_back_sorted_versions(tmp_path):
    versions = [
        ("Pricing", "Motor", "1.10.0"),
        ("Pricing", "Motor", "1.2.0"),
        ("Claims", "Home", "2.0.0"),
        ("Pricing", "Motor", "1.2.10"),
    ]
    manifest, entries = package_parts(versions)
    path = write(tmp_path, manifest, entries)

    package = read_package(path, max_uncompressed_bytes=LIMIT)

    assert isinstance(package, Package)
    assert package.manifest == manifest
    assert package.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()  # from the same read
    assert [(v.folder, v.service, v.version) for v in package.versions] == [
        ("Claims", "Home", "2.0.0"),
        ("Pricing", "Motor", "1.2.0"),
        ("Pricing", "Motor", "1.2.10"),
        ("Pricing", "Motor", "1.10.0"),
    ]
    first = next(v for v in package.versions if v.version == "1.10.0")
    assert first.version_id == version_id(0)
    assert first.service_id == service_id_of("Pricing", "Motor")
    assert first.metadata["release_note"] == "release 1.10.0"
    workbook = fake_workbook("Motor", "1.10.0")
    listed = first.workbook
    assert (listed.path, listed.size, listed.sha256, listed.crc32) == (
        "Pricing/Motor/1.10.0/model.xlsx", len(workbook), hashlib.sha256(workbook).hexdigest(), zlib.crc32(workbook)
    )
    with open(path, "rb") as package:  # where its bytes lie in the file, stored as they are
        package.seek(listed.data_offset)
        assert listed.stored and package.read(listed.size) == workbook
    assert first.neuron.path == "Pricing/Motor/1.10.0/neuron.zip"


def test_xlsm_workbook_and_directory_entries_are_accepted(tmp_path):
    manifest, entries = package_parts(workbook_name="Rates Table.XLSM")
    path = write(tmp_path, manifest, entries)
    # Re-zipped by hand: plain directory entries are ignored.
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "dirs.zip", "w") as dst:
        for folder in ("Pricing/", "Pricing/Motor/", "Pricing/Motor/1.0.0/"):
            dst.writestr(zipfile.ZipInfo(folder), b"")
        for info in src.infolist():
            dst.writestr(info, src.read(info))
    package = read_package(tmp_path / "dirs.zip", max_uncompressed_bytes=LIMIT)
    assert package.versions[0].workbook.path.endswith("Rates Table.XLSM")


def test_open_member_streams_the_bytes_and_closes_the_zip(tmp_path):
    path = build(tmp_path)
    version = read_package(path, max_uncompressed_bytes=LIMIT).versions[0]

    with open_member(path, version.workbook) as stream:
        assert stream.readable()
        data = b"".join(iter(lambda: stream.read(7), b""))
        inner_zip = stream._zf
    assert data == fake_workbook("Motor", "1.0.0")
    assert stream.closed
    assert inner_zip.fp is None  # the ZipFile was closed too

    stream = open_member(path, version.neuron)
    assert stream.read() == fake_neuron("Motor", "1.0.0")
    stream.close()
    stream.close()  # idempotent
    assert stream._zf.fp is None


def test_package_members_share_one_zip_and_check_by_crc32_when_told(tmp_path):
    path = build(tmp_path, versions=(("Pricing", "Motor", "1.0.0"), ("Pricing", "Motor", "1.1.0")))
    versions = read_package(path, max_uncompressed_bytes=LIMIT).versions
    with PackageMembers(path) as members:
        assert [members.open(v.workbook).read() for v in versions] == [
            fake_workbook("Motor", v.version) for v in versions
        ]
    data = bytearray(path.read_bytes())
    data[data.index(fake_neuron("Motor", "1.1.0")) + 50] ^= 0xFF  # damaged after it was checked
    path.write_bytes(bytes(data))
    with PackageMembers(path) as members, pytest.raises(InvalidPackage, match="corrupt"):
        members.open(versions[1].neuron, check_sha256=False).read()


def test_stored_members_are_copied_in_place_and_checked_by_crc32_when_told(tmp_path, monkeypatch):
    path = build(tmp_path)
    version = read_package(path, max_uncompressed_bytes=LIMIT).versions[0]
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *args, **kwargs: pytest.fail("read through zipfile"))
    with PackageMembers(path) as members, members.open(version.neuron, check_sha256=False) as stream:
        assert b"".join(iter(lambda: stream.read(5), b"")) == fake_neuron("Motor", "1.0.0")
    data = bytearray(path.read_bytes())
    data[data.index(fake_neuron("Motor", "1.0.0")) + 5] ^= 0xFF  # stored, then damaged
    path.write_bytes(bytes(data))
    with PackageMembers(path) as members, pytest.raises(InvalidPackage, match="corrupt"):
        members.open(version.neuron, check_sha256=False).read()


def test_the_file_and_its_members_are_hashed_right_across_any_number_of_reads(tmp_path, monkeypatch):
    """The file's SHA-256 is computed on a thread of its own, chunk by chunk: with 7-byte chunks,
    every member and the file span many, cut anywhere."""
    monkeypatch.setattr("exports.packages.reader.contents.CHUNK_SIZE", 7)
    path = build(tmp_path, versions=(("Pricing", "Motor", "1.0.0"), ("Pricing", "Motor", "1.1.0")))

    assert read_package(path, max_uncompressed_bytes=LIMIT).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    data = bytearray(path.read_bytes())
    data[data.index(fake_workbook("Motor", "1.1.0")) + 40] ^= 0xFF
    path.write_bytes(bytes(data))
    assert "corrupt" in rejected(path)


def test_a_stored_member_is_read_in_place_and_seeks_without_rereading(tmp_path, monkeypatch):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as workbook:  # a workbook is a ZIP its reader seeks in
        workbook.writestr("xl/workbook.xml", b"<workbook/>")
    monkeypatch.setitem(globals(), "fake_workbook", lambda service, version: inner.getvalue())
    path = build(tmp_path)
    version = read_package(path, max_uncompressed_bytes=LIMIT).versions[0]
    with open_stored_member(path, version.workbook) as window:
        assert window.seek(0, os.SEEK_END) == len(inner.getvalue())
        assert zipfile.ZipFile(window).read("xl/workbook.xml") == b"<workbook/>"
    assert open_stored_member(path, replace(version.workbook, stored=False)) is None


def test_open_member_refuses_bytes_that_differ_from_the_checked_member(tmp_path):
    path = build(tmp_path)
    version = read_package(path, max_uncompressed_bytes=LIMIT).versions[0]
    forged = PackageFile(version.neuron.path, version.neuron.size, "0" * 64)
    with (
        open_member(path, forged) as stream,
        pytest.raises(InvalidPackage, match="does not match its SHA-256"),
    ):
        stream.read()
    with pytest.raises(InvalidPackage, match="no entry 'nope'"):
        open_member(path, PackageFile("nope", 1, "0" * 64))


# ----------------------------------------------------------------------------- not a ZIP


@pytest.mark.parametrize(
    "content, expected",
    [
        (bytes(range(256)) * 40, "not a ZIP file"),
        (b"", "is empty"),
        (b"manifest.json\nthis is a text file\n", "not a ZIP file"),
    ],
)
def test_not_a_zip(tmp_path, content, expected):
    path = tmp_path / "upload.zip"
    path.write_bytes(content)
    message = rejected(path)
    assert expected in message
    assert "Upload the package.zip produced by a 'migrate' export" in message


def test_truncated_package(tmp_path):
    path = build(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in rejected(path)


def test_corrupt_central_directory(tmp_path):
    path = build(tmp_path)
    data = bytearray(path.read_bytes())
    start = data.rindex(b"PK\x01\x02")  # last central-directory record
    data[start : start + 4] = b"XX\x01\x02"
    path.write_bytes(bytes(data))
    assert "truncated or corrupt" in rejected(path)


# ----------------------------------------------------------------------------- unsafe names


@pytest.mark.parametrize(
    "name", ["../evil", "/abs", "a/../../b", "a\\b", "C:x", "a//b", "./a", "a/./b", "\\x", "a\x85b", "a\x9fb"]
)
def test_zip_slip_names(tmp_path, name):
    path = raw_zip(tmp_path, ["manifest.json", name])
    message = rejected(path)
    assert message.startswith(f"Unsafe path {name!r}")


def test_nul_in_name(tmp_path):
    # zipfile silently cuts ZipInfo.filename at a NUL; the raw name is what counts.
    path = raw_zip(tmp_path, ["ok.txt"])
    data = path.read_bytes().replace(b"ok.txt", b"o\x00.txt")
    path.write_bytes(data)
    assert "Unsafe path 'o\\x00.txt'" in rejected(path)


def test_symlink_entry(tmp_path):
    link = zipfile.ZipInfo("Pricing/link")
    link.create_system = 3
    link.external_attr = 0o120777 << 16
    path = raw_zip(tmp_path, ["manifest.json", (link, b"/etc/passwd")])
    message = rejected(path)
    assert "'Pricing/link'" in message and "symlink" in message


def test_duplicate_names(tmp_path):
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = raw_zip(tmp_path, ["manifest.json", "a/b.txt", "a/b.txt"])
    assert "Duplicate entry 'a/b.txt'" in rejected(path)


def test_directory_entry_with_data(tmp_path):
    path = raw_zip(tmp_path, [(zipfile.ZipInfo("dir/"), b"data")])
    assert "directory entry that holds data" in rejected(path)


def test_encrypted_entry(tmp_path):
    path = raw_zip(tmp_path, ["manifest.json"])
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    data[central + 8] |= 0x1  # general purpose flag: encrypted
    path.write_bytes(bytes(data))
    assert "Encrypted entry 'manifest.json'" in rejected(path)


def test_too_many_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(package_reader.zip_safety, "MAX_ENTRIES", 5)
    path = raw_zip(tmp_path, [f"f{i}" for i in range(6)])
    assert "too many entries (6; at most 5" in rejected(path)
    assert MAX_ENTRIES == 20_000


# ----------------------------------------------------------------------------- zip bombs


class Zeros(io.RawIOBase):
    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def test_zip_bomb_by_ratio(tmp_path):
    size = 50 * 1000 * 1000
    zeros = Entry("Pricing/Motor/1.0.0/zeros.bin", size, lambda: Zeros(size))
    manifest, entries = package_parts()
    manifest["files"].append(
        {"path": zeros.path, "size": size, "sha256": hashlib.sha256(bytes(size)).hexdigest()}
    )
    path = write(tmp_path, manifest, [*entries, zeros])
    assert path.stat().st_size < size // MAX_COMPRESSION_RATIO
    message = rejected(path)
    assert message.startswith("Possible zip bomb: entry 'Pricing/Motor/1.0.0/zeros.bin'")
    assert "ratio" in message


def test_zip_bomb_by_total_declared_size(tmp_path):
    path = build(tmp_path)
    message = rejected(path, limit=1000)
    assert message.startswith("Possible zip bomb")
    assert "more than the limit of 1000 bytes" in message


def overlapping_zip(tmp_path) -> bytes:
    """Two central-directory records pointing at the same local header (a quoted-overlap bomb)."""
    path = raw_zip(tmp_path, [(zipfile.ZipInfo("a.txt"), b"hello world" * 100)])
    data = path.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    (sig, disk, cd_disk, _n_disk, _n_total, cd_size, cd_offset, comment_len) = struct.unpack(
        "<4s4H2LH", data[eocd : eocd + 22]
    )
    record = data[cd_offset : cd_offset + cd_size]
    second = record.replace(b"a.txt", b"b.txt")
    new_eocd = struct.pack(
        "<4s4H2LH", sig, disk, cd_disk, 2, 2, cd_size * 2, cd_offset, comment_len
    )
    return data[:cd_offset] + record + second + new_eocd


def test_zip_bomb_by_overlapping_entries(tmp_path):
    path = tmp_path / "overlap.zip"
    path.write_bytes(overlapping_zip(tmp_path))
    with zipfile.ZipFile(path) as zf:  # zipfile 3.11.7 opens it without complaint
        assert [i.header_offset for i in zf.infolist()] == [0, 0]
    message = rejected(path)
    assert message.startswith("Possible zip bomb: entry ")
    assert "overlaps entry" in message


def test_entry_overlapping_the_central_directory(tmp_path):
    path = raw_zip(tmp_path, [(zipfile.ZipInfo("a.txt"), b"hello")])
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    compress_size = struct.unpack_from("<L", data, central + 20)[0]
    struct.pack_into("<L", data, central + 20, compress_size + 100)
    path.write_bytes(bytes(data))
    assert "overlaps the central directory" in rejected(path)


# ----------------------------------------------------------------------------- manifest


def test_missing_manifest(tmp_path):
    _, entries = package_parts()
    path = write(tmp_path, None, entries)
    assert rejected(path).startswith(
        "The package has no manifest.json: this is not a package exported by sparkexport"
    )


def test_manifest_not_json(tmp_path):
    _, entries = package_parts()
    path = write(tmp_path, None, [bytes_entry("manifest.json", b"{not json"), *entries])
    assert "manifest.json is not valid JSON" in rejected(path)


def test_manifest_not_an_object(tmp_path):
    _, entries = package_parts()
    path = write(tmp_path, None, [bytes_entry("manifest.json", b"[1, 2]"), *entries])
    assert "manifest.json is not a JSON object" in rejected(path)


def test_manifest_not_utf8(tmp_path):
    path = write(tmp_path, None, [bytes_entry("manifest.json", b'{"a": "\xff"}')])
    assert "manifest.json is not UTF-8" in rejected(path)


def test_manifest_too_large(tmp_path, monkeypatch):
    monkeypatch.setattr(package_reader.contents, "MAX_MANIFEST_BYTES", 100)
    path = build(tmp_path)
    assert "manifest.json is too large" in rejected(path)


def test_wrong_format(tmp_path):
    manifest, entries = package_parts()
    manifest["format"] = "spark-impex"
    message = rejected(write(tmp_path, manifest, entries))
    assert "format 'spark-impex', not 'sparkexport-package'" in message


def test_newer_format_version(tmp_path):
    manifest, entries = package_parts()
    manifest["format_version"] = 2
    message = rejected(write(tmp_path, manifest, entries))
    assert "format_version 2, which is newer than this server supports (supported: 1)" in message


def test_onpremises_package(tmp_path):
    manifest, entries = package_parts(file_filter="onpremises")
    message = rejected(write(tmp_path, manifest, entries))
    assert "is an 'onpremises' export, which holds no workbooks and cannot be imported" in message
    assert "export again with file_filter 'migrate'" in message


def test_manifest_lists_a_missing_entry(tmp_path):
    manifest, entries = package_parts()
    missing = entries.pop(0)
    message = rejected(write(tmp_path, manifest, entries))
    assert f"the manifest lists {missing.path!r} but the ZIP has no such entry" in message


def test_unlisted_extra_entry(tmp_path):
    manifest, entries = package_parts()
    entries.append(bytes_entry("Pricing/Motor/1.0.0/extra.txt", b"surprise"))
    assert "unexpected entry 'Pricing/Motor/1.0.0/extra.txt' not in the manifest" in rejected(
        write(tmp_path, manifest, entries)
    )


def test_listed_size_mismatch(tmp_path):
    manifest, entries = package_parts()
    manifest["files"][0]["size"] += 1
    message = rejected(write(tmp_path, manifest, entries))
    assert (
        f"entry {entries[0].path!r} is {entries[0].size} bytes but the manifest lists {entries[0].size + 1}"
        in message
    )


def test_listed_file_outside_every_version(tmp_path):
    manifest, entries = package_parts()
    extra = bytes_entry("Other/readme.txt", b"hi")
    manifest["files"].append({"path": extra.path, "size": extra.size, "sha256": extra.sha256})
    assert "unexpected file 'Other/readme.txt'" in rejected(
        write(tmp_path, manifest, [*entries, extra])
    )


def test_version_with_two_workbooks(tmp_path):
    manifest, entries = package_parts()
    extra = bytes_entry("Pricing/Motor/1.0.0/second.xlsx", b"x")
    manifest["files"].append({"path": extra.path, "size": extra.size, "sha256": extra.sha256})
    assert "has 2 workbooks" in rejected(write(tmp_path, manifest, [*entries, extra]))


def test_version_without_workbook(tmp_path):
    manifest, entries = package_parts()
    entries = [e for e in entries if not e.path.endswith(".xlsx")]
    manifest["files"] = [f for f in manifest["files"] if not f["path"].endswith(".xlsx")]
    assert "version Pricing/Motor[1.0.0] has no workbook" in rejected(
        write(tmp_path, manifest, entries)
    )


# ----------------------------------------------------------------------------- member contents


def test_tampered_member(tmp_path):
    # Valid ZIP (CRCs match) whose workbook differs from the manifest's SHA-256.
    manifest, entries = package_parts()
    workbook = next(e for e in entries if e.path.endswith(".xlsx"))
    forged = fake_workbook("Motor", "1.0.0")[::-1]
    entries = [bytes_entry(e.path, forged) if e is workbook else e for e in entries]
    message = rejected(write(tmp_path, manifest, entries))
    assert message.startswith(
        "The package was modified: entry 'Pricing/Motor/1.0.0/model.xlsx' does not match its SHA-256"
    )
    assert "altered or damaged in transit. Export it again" in message


def test_corrupt_member(tmp_path):
    path = build(tmp_path)
    data = bytearray(path.read_bytes())
    workbook = fake_workbook("Motor", "1.0.0")
    at = data.index(workbook) + 100  # inside the STORED workbook's data
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    assert "entry 'Pricing/Motor/1.0.0/model.xlsx' is corrupt" in rejected(path)


def test_corrupt_deflated_manifest(tmp_path):
    path = build(tmp_path)
    data = bytearray(path.read_bytes())
    data[60] ^= 0xFF  # inside manifest.json's deflated data (first member)
    path.write_bytes(bytes(data))
    assert "entry 'manifest.json' is corrupt" in rejected(path)


# ----------------------------------------------------------------------------- service versions


def test_version_json_disagrees_with_manifest(tmp_path):
    manifest, entries = package_parts()
    manifest["service_versions"][0]["version_id_source"] = version_id(99)
    message = rejected(write(tmp_path, manifest, entries))
    assert "version.json of Pricing/Motor[1.0.0] has version_id" in message
    assert version_id(99) in message


def test_version_json_names_another_service(tmp_path):
    manifest, entries = package_parts()
    index = next(i for i, e in enumerate(entries) if e.path.endswith("version.json"))
    metadata = json.loads(entries[index].open().read())
    metadata["service"] = "Home"
    entries[index] = bytes_entry(entries[index].path, json_bytes(metadata))
    manifest["files"][index] = {
        "path": entries[index].path,
        "size": entries[index].size,
        "sha256": entries[index].sha256,
    }
    assert "has service 'Home' but the manifest says 'Motor'" in rejected(
        write(tmp_path, manifest, entries)
    )


@pytest.mark.parametrize("bad", ["1.0", "v1.0.0", "1.0.0-beta", "01.0.0"])
def test_bad_version_string(tmp_path, bad):
    manifest, entries = package_parts(versions=[("Pricing", "Motor", bad)])
    message = rejected(write(tmp_path, manifest, entries))
    assert f"invalid version {bad!r}" in message and "MAJOR.MINOR.PATCH" in message


@pytest.mark.parametrize("field", ["version_id_source", "service_id_source"])
def test_bad_uuid(tmp_path, field):
    manifest, entries = package_parts()
    manifest["service_versions"][0][field] = "not-a-uuid"
    message = rejected(write(tmp_path, manifest, entries))
    assert f"invalid {field}" in message and "expected a UUID" in message


@pytest.mark.parametrize("folder", ["a..b", " lead", "x" * 101, "semi;colon"])
def test_bad_folder_name(tmp_path, folder):
    manifest, entries = package_parts(versions=[(folder, "Motor", "1.0.0")])
    assert f"invalid folder name {folder!r}" in rejected(write(tmp_path, manifest, entries))


def test_duplicate_version_id(tmp_path):
    manifest, entries = package_parts(
        versions=[("Pricing", "Motor", "1.0.0"), ("Pricing", "Motor", "1.1.0")]
    )
    manifest["service_versions"][1]["version_id_source"] = manifest["service_versions"][0][
        "version_id_source"
    ]
    assert "two versions the version_id" in rejected(write(tmp_path, manifest, entries))


# ----------------------------------------------------------------------------- memory


def test_large_member_is_streamed_in_constant_memory(tmp_path):
    size = 32 * 1024 * 1024
    digest = hashlib.sha256()
    zeros = Zeros(size)
    while chunk := zeros.read(1 << 20):
        digest.update(chunk)
    manifest, entries = package_parts()
    # Swap the workbook for a 32 MiB one (.xlsx: STORED) and keep manifest and version.json in step.
    index = next(i for i, e in enumerate(entries) if e.path.endswith(".xlsx"))
    entries[index] = Entry(entries[index].path, size, lambda: Zeros(size))
    manifest["files"][index].update(size=size, sha256=digest.hexdigest())
    meta_index = next(i for i, e in enumerate(entries) if e.path.endswith("version.json"))
    metadata = json.loads(entries[meta_index].open().read())
    metadata["workbook"].update(size=size, sha256=digest.hexdigest())
    entries[meta_index] = bytes_entry(entries[meta_index].path, json_bytes(metadata))
    manifest["files"][meta_index].update(
        size=entries[meta_index].size, sha256=entries[meta_index].sha256
    )
    path = write(tmp_path, manifest, entries)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo(entries[index].path).compress_type == zipfile.ZIP_STORED

    tracemalloc.start()
    try:
        package = read_package(path, max_uncompressed_bytes=LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert package.versions[0].workbook.size == size
    assert peak < 8 * 1024 * 1024, peak
