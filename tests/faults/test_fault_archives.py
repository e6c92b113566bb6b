"""Archive limits: a small archive that unpacks to too much, or to too many files, is refused before
anything is written (the "zip bomb" case of faults-2.md). The limits are lowered so the archives stay tiny."""

from __future__ import annotations

import io
import tarfile
import urllib.request
import zipfile
from collections import namedtuple
from pathlib import Path

import pytest

from gantool import catalog
from gantool.catalog import download, extract_archive
from gantool.errors import InputError


def zip_archive(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path


def tar_archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as bundle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return path


MAKERS = {"zip": zip_archive, "tar.gz": tar_archive}


@pytest.mark.parametrize("kind", MAKERS)
def test_total_unpacked_size_is_bounded_before_extracting(tmp_path: Path, kind: str) -> None:
    # 3 members of 4000 zero bytes: each is under the limit, together they are over it; compressed, a few hundred bytes
    archive = MAKERS[kind](tmp_path / f"bomb.{kind}", {f"d/{i}.bin": bytes(4000) for i in range(3)})
    assert archive.stat().st_size < 1000
    with pytest.raises(InputError) as caught:
        extract_archive(archive, tmp_path / "out", max_bytes=10_000)
    message = str(caught.value)
    assert "\n" not in message and str(archive) in message and "unpack to more than 10,000 bytes" in message
    assert not (tmp_path / "out").exists()
    extract_archive(archive, tmp_path / "ok", max_bytes=12_000)  # exactly at the limit is fine
    assert sorted(p.name for p in (tmp_path / "ok" / "d").iterdir()) == ["0.bin", "1.bin", "2.bin"]


@pytest.mark.parametrize("kind", MAKERS)
def test_member_count_is_bounded_before_extracting(tmp_path: Path, kind: str) -> None:
    archive = MAKERS[kind](tmp_path / f"many.{kind}", {f"{i}.txt": b"" for i in range(6)})
    with pytest.raises(InputError, match=r"^refusing to extract '.*many.*': it has more than 5 members"):
        extract_archive(archive, tmp_path / "out", max_members=5)
    assert not (tmp_path / "out").exists()
    extract_archive(archive, tmp_path / "ok", max_members=6)
    assert len(list((tmp_path / "ok").iterdir())) == 6


def test_module_limits_are_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = zip_archive(tmp_path / "a.zip", {"x.bin": bytes(2000)})
    monkeypatch.setattr(catalog, "MAX_ARCHIVE_BYTES", 1000)
    with pytest.raises(InputError, match="MAX_ARCHIVE_BYTES"):
        extract_archive(archive, tmp_path / "out")
    monkeypatch.setattr(catalog, "MAX_ARCHIVE_BYTES", 10_000)
    monkeypatch.setattr(catalog, "MAX_ARCHIVE_MEMBERS", 0)
    with pytest.raises(InputError, match="MAX_ARCHIVE_MEMBERS"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_archive_larger_than_the_free_space_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = zip_archive(tmp_path / "a.zip", {"x.bin": bytes(5000)})
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(catalog.shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 100, 100))
    with pytest.raises(InputError, match=r"unpacks to 5,000 bytes but only 100 bytes are free"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_download_names_the_url_not_the_deleted_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("horse2zebra/trainA/a.jpg", bytes(50_000))

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(payload.getvalue()))}

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(payload.getvalue()))
    monkeypatch.setattr(catalog, "MAX_ARCHIVE_BYTES", 1000)
    with pytest.raises(InputError) as caught:
        download("horse2zebra", tmp_path / "root")
    message = str(caught.value)
    assert message.startswith(f"refusing to extract {catalog.KNOWN_DATASETS['horse2zebra'].url}: ")
    assert ".tmp-" not in message
    assert list((tmp_path / "root").iterdir()) == []  # nothing left behind
