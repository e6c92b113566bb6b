"""Known datasets: name resolution, offline download failure, safe extraction. Never touches the network."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gantool import catalog
from gantool.catalog import (
    KNOWN_DATASETS,
    data_root,
    download,
    extract_archive,
    known_dataset,
    resolve_data,
)
from gantool.cli.data import build_data_app
from gantool.errors import InputError, UsageError


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test runs offline with its own data root."""
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(catalog.urllib.request, "urlopen", offline)
    root = tmp_path / "data-root"
    monkeypatch.setenv("GANTOOL_DATA", str(root))
    return root


def unpaired_tree(folder: Path) -> Path:
    for sub in ("trainA", "trainB", "testA", "testB"):
        (folder / sub).mkdir(parents=True)
        (folder / sub / "x.jpg").write_bytes(b"jpeg")
    return folder


def zip_bytes(entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in entries.items():
            bundle.writestr(name, data)
        for name, link_target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            bundle.writestr(info, link_target)
    return buffer.getvalue()


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


# ------------------------------------------------------------------------------------------ resolution


def test_data_root_default_and_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert data_root() == tmp_path / "data-root"
    monkeypatch.delenv("GANTOOL_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_root() == tmp_path / "cache" / "gantool" / "data"


def test_existing_path_wins(tmp_path: Path, no_network: Path) -> None:
    unpaired_tree(no_network / "horse2zebra")
    own = unpaired_tree(tmp_path / "horse2zebra")
    assert resolve_data(own) == own
    assert resolve_data(str(own)) == own


def test_names_resolve_under_the_data_root(no_network: Path, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no ./horse2zebra here
    folder = unpaired_tree(no_network / "horse2zebra")
    assert resolve_data("horse2zebra") == folder
    unpaired_tree(no_network / "my_own_set")  # any folder under the root resolves by name
    assert resolve_data("my_own_set") == no_network / "my_own_set"


def test_missing_known_name_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as caught:
        resolve_data("apple2orange")
    message = str(caught.value)
    assert "\n" not in message
    assert "gantool data download apple2orange" in message
    assert "trainA/ trainB/ testA/ testB/" in message and "data-root/apple2orange" in message


def test_unknown_name_and_missing_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="did you mean 'horse2zebra'"):
        resolve_data("hrose2zebra")
    with pytest.raises(InputError, match="does not exist"):
        resolve_data("./nowhere/at/all")
    with pytest.raises(UsageError, match="unknown dataset 'zebras'"):
        known_dataset("zebras")


def test_catalogue_has_the_unpaired_and_paired_sets() -> None:
    for name in ("horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo", "vangogh2photo"):
        assert KNOWN_DATASETS[name].kind == "unpaired" and KNOWN_DATASETS[name].url.endswith(f"/{name}.zip")
    for name in ("facades", "maps", "edges2shoes"):
        assert KNOWN_DATASETS[name].kind == "paired" and KNOWN_DATASETS[name].url.endswith(f"/{name}.tar.gz")


def test_module_imports_no_torch() -> None:
    code = "import sys, gantool.datasets; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# -------------------------------------------------------------------------------------------- download


def test_offline_download_fails_in_one_line(no_network: Path) -> None:
    with pytest.raises(InputError) as caught:
        download("horse2zebra")
    message = str(caught.value)
    assert "\n" not in message
    assert "cannot download 'horse2zebra'" in message and "name resolution" in message
    assert f"'{no_network / 'horse2zebra'}'" in message and "trainA/ trainB/ testA/ testB/" in message
    assert not (no_network / "horse2zebra").exists()
    assert not [p for p in no_network.iterdir() if p.name.startswith(".tmp")]  # temporary files cleaned up


def test_download_extracts_and_renames_into_place(monkeypatch: pytest.MonkeyPatch, no_network: Path) -> None:
    files = {f"apple2orange/{sub}/{i}.jpg": b"img" for sub in ("trainA", "trainB", "testA", "testB") for i in range(2)}
    payload = zip_bytes(files)
    monkeypatch.setattr(catalog.urllib.request, "urlopen", lambda url, timeout: FakeResponse(payload))
    seen: list[tuple[int, int | None]] = []
    folder = download("apple2orange", progress=lambda done, total: seen.append((done, total)))
    assert folder == no_network / "apple2orange"
    assert sorted(p.name for p in folder.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert seen[-1] == (len(payload), len(payload))
    assert sorted(p.name for p in no_network.iterdir()) == ["apple2orange"]
    assert download("apple2orange") == folder  # already there: no second download


def test_download_refuses_an_archive_without_the_layout(monkeypatch: pytest.MonkeyPatch, no_network: Path) -> None:
    payload = zip_bytes({"readme.txt": b"hello"})
    monkeypatch.setattr(catalog.urllib.request, "urlopen", lambda url, timeout: FakeResponse(payload))
    with pytest.raises(InputError, match="has no trainA/, trainB/ folders"):
        download("horse2zebra")
    assert list(no_network.iterdir()) == []


def test_data_command_offline(no_network: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(build_data_app(), ["download", "horse2zebra"])
    assert result.exit_code == 1
    assert "cannot download 'horse2zebra'" in result.output
    listing = runner.invoke(build_data_app(), ["list"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0 and "summer2winter_yosemite" in listing.output
    bad = runner.invoke(build_data_app(), ["download", "horse2zebar"])
    assert bad.exit_code == 2 and "did you mean 'horse2zebra'" in bad.output


# ------------------------------------------------------------------------------------- safe extraction


@pytest.mark.parametrize("evil", ["../escape.txt", "data/../../escape.txt", "/tmp/absolute.txt", "C:/windows.txt",
                                  "..\\backslash.txt"])
def test_zip_with_escaping_paths_is_refused(tmp_path: Path, evil: str) -> None:
    archive = tmp_path / "evil.zip"
    archive.write_bytes(zip_bytes({"ok/good.txt": b"fine", evil: b"pwned"}))
    target = tmp_path / "out" / "inside"
    with pytest.raises(InputError, match="refusing to extract"):
        extract_archive(archive, target)
    assert not (tmp_path / "out" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
    assert not (target / "ok" / "good.txt").exists()  # checked completely before writing anything


def test_zip_with_a_symlink_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    archive.write_bytes(zip_bytes({"a.txt": b"x"}, symlinks={"link": "/etc"}))
    with pytest.raises(InputError, match="symbolic link"):
        extract_archive(archive, tmp_path / "out")


def test_existing_symlink_in_target_cannot_be_used_to_escape(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "sneaky").symlink_to(tmp_path)
    archive = tmp_path / "via-link.zip"
    archive.write_bytes(zip_bytes({"sneaky/escape.txt": b"pwned"}))
    with pytest.raises(InputError, match="would land outside"):
        extract_archive(archive, target)
    assert not (tmp_path / "escape.txt").exists()


def test_tar_links_and_escapes_are_refused(tmp_path: Path) -> None:
    def tar_with(member: tarfile.TarInfo, data: bytes = b"") -> Path:
        path = tmp_path / f"t{len(list(tmp_path.iterdir()))}.tar.gz"
        with tarfile.open(path, "w:gz") as bundle:
            member.size = len(data)
            bundle.addfile(member, io.BytesIO(data))
        return path

    escape = tarfile.TarInfo("../escape.txt")
    with pytest.raises(InputError, match="climbs out"):
        extract_archive(tar_with(escape, b"x"), tmp_path / "out")
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(InputError, match="is a link"):
        extract_archive(tar_with(link), tmp_path / "out")
    device = tarfile.TarInfo("dev")
    device.type = tarfile.CHRTYPE
    with pytest.raises(InputError, match="special file"):
        extract_archive(tar_with(device), tmp_path / "out")


def test_good_archives_extract(tmp_path: Path) -> None:
    archive = tmp_path / "good.zip"
    archive.write_bytes(zip_bytes({"set/trainA/1.jpg": b"a", "set/": b"", "./set/trainB/2.jpg": b"b"}))
    out = extract_archive(archive, tmp_path / "zip-out")
    assert (out / "set" / "trainA" / "1.jpg").read_bytes() == b"a" and (out / "set" / "trainB" / "2.jpg").exists()
    tar = tmp_path / "good.tar.gz"
    with tarfile.open(tar, "w:gz") as bundle:
        info = tarfile.TarInfo("facades/train/1.jpg")
        info.size = 3
        bundle.addfile(info, io.BytesIO(b"abc"))
    assert (extract_archive(tar, tmp_path / "tar-out") / "facades" / "train" / "1.jpg").read_bytes() == b"abc"


def test_corrupt_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(InputError, match="neither a zip nor a tar"):
        extract_archive(junk, tmp_path / "out")
