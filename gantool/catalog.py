"""Known public datasets by name: where they live (``--data NAME``), and ``gantool data download NAME``.

``--data`` takes a folder or a name. :func:`resolve_data` lets an existing path win, then looks a known
name up under the data root (``$GANTOOL_DATA``, default ``~/.cache/gantool/data``), and otherwise fails
in one line saying how to get the data. :func:`download` fetches the authors' official archive (zip or
tar.gz), extracts it into a temporary folder next to the target with every member checked (no absolute
paths, no ``..``, no links, nothing landing outside the folder), and renames it into place, so a
half-finished download never looks like a dataset. Without network it fails in one line that says where
to put which folders.

This module imports neither torch nor anything heavy; the `gantool data` commands live in
:mod:`gantool.cli.data`.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from gantool.errors import InputError, UsageError
from gantool.plugin.registry import suggest

DatasetKind = Literal["unpaired", "paired"]

#: Seconds without progress before a download is abandoned (per socket operation, not in total).
DOWNLOAD_TIMEOUT = 30.0
_CHUNK = 1 << 20

#: The most an archive may unpack to, in bytes (the sum of its members' sizes) and in members. The largest
#: known dataset (edges2shoes) unpacks to about 2.2 GB in some 50,000 files; a small archive that claims
#: more (a "zip bomb") is refused before anything is written. Tests lower these.
MAX_ARCHIVE_BYTES = 16 << 30
MAX_ARCHIVE_MEMBERS = 500_000

_CYCLEGAN_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
_PIX2PIX_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"


@dataclass(frozen=True)
class KnownDataset:
    """A public dataset gantool can fetch by name.

    Attributes:
        name: The name users type (``--data horse2zebra``); also the folder under the data root.
        kind: ``unpaired`` (CycleGAN: ``trainA/ trainB/ testA/ testB/``) or ``paired`` (pix2pix:
            ``train/ val/ test/`` of side-by-side ``A|B`` images).
        url: The authors' official archive.
        summary: One line for ``gantool data list``.
        folders: Sub-folders the archive provides (the expected layout).
    """

    name: str
    kind: DatasetKind
    url: str
    summary: str
    folders: tuple[str, ...]

    @property
    def required(self) -> tuple[str, ...]:
        """Folders that must exist for the dataset to count as present (the training split)."""
        return ("trainA", "trainB") if self.kind == "unpaired" else ("train",)

    def layout(self) -> str:
        """The expected layout in words, for error messages."""
        folders = " ".join(f"{f}/" for f in self.folders)
        if self.kind == "unpaired":
            return f"{folders} folders of images (A and B domains, any number of images each)"
        return f"{folders} folders of side-by-side A|B images (left half A, right half B)"


_UNPAIRED = ("trainA", "trainB", "testA", "testB")


def _cyclegan(name: str, summary: str) -> KnownDataset:
    return KnownDataset(name, "unpaired", _CYCLEGAN_URL.format(name=name), summary, _UNPAIRED)


def _pix2pix(name: str, summary: str, folders: tuple[str, ...] = ("train", "val")) -> KnownDataset:
    return KnownDataset(name, "paired", _PIX2PIX_URL.format(name=name), summary, folders)


#: Datasets by name: CycleGAN's unpaired sets and pix2pix's paired ones (names are unique across both;
#: CycleGAN's unpaired copies of maps and facades are left out in favour of the paired originals).
KNOWN_DATASETS: dict[str, KnownDataset] = {d.name: d for d in (
    _cyclegan("horse2zebra", "CycleGAN: horses (A) and zebras (B) from ImageNet, 256x256"),
    _cyclegan("apple2orange", "CycleGAN: apples (A) and oranges (B) from ImageNet, 256x256"),
    _cyclegan("summer2winter_yosemite", "CycleGAN: Yosemite in summer (A) and winter (B) from Flickr, 256x256"),
    _cyclegan("monet2photo", "CycleGAN: Monet paintings (A) and landscape photos (B), 256x256"),
    _cyclegan("cezanne2photo", "CycleGAN: Cezanne paintings (A) and landscape photos (B), 256x256"),
    _cyclegan("ukiyoe2photo", "CycleGAN: ukiyo-e prints (A) and landscape photos (B), 256x256"),
    _cyclegan("vangogh2photo", "CycleGAN: Van Gogh paintings (A) and landscape photos (B), 256x256"),
    _cyclegan("iphone2dslr_flower", "CycleGAN: flower photos from iPhones (A) and DSLRs with shallow focus (B)"),
    _pix2pix("facades", "pix2pix: CMP facade photos | label maps, 256x256 pairs", ("train", "val", "test")),
    _pix2pix("maps", "pix2pix: aerial photos | Google maps of New York, 600x600 pairs"),
    _pix2pix("cityscapes", "pix2pix: street photos | semantic labels (Cityscapes), 256x256 pairs"),
    _pix2pix("edges2shoes", "pix2pix: edge maps | shoe photos (UT Zappos50K), 256x256 pairs"),
    _pix2pix("edges2handbags", "pix2pix: edge maps | handbag photos (iGAN), 256x256 pairs"),
    _pix2pix("night2day", "pix2pix: night | day webcam pairs (Transient Attributes)", ("train", "val", "test")),
)}


# ------------------------------------------------------------------------------------------ resolution


def data_root() -> Path:
    """Where named datasets live: ``$GANTOOL_DATA``, else ``$XDG_CACHE_HOME/gantool/data`` (``~/.cache``)."""
    configured = os.environ.get("GANTOOL_DATA")
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gantool" / "data"


def known_dataset(name: str) -> KnownDataset:
    """The :class:`KnownDataset` called ``name``; a ``UsageError`` with a suggestion otherwise."""
    try:
        return KNOWN_DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}{suggest(name, list(KNOWN_DATASETS))}; known: "
                         f"{', '.join(KNOWN_DATASETS)} (see `gantool data list`)") from None


def is_complete(folder: Path, dataset: KnownDataset) -> bool:
    """Whether ``folder`` holds the dataset's training folders."""
    return all((folder / sub).is_dir() for sub in dataset.required)


def _looks_like_path(value: str) -> bool:
    return any(sep in value for sep in ("/", "\\")) or value.startswith((".", "~"))


def resolve_data(value: str | Path) -> Path:
    """The folder ``--data VALUE`` means: an existing path wins, then a dataset name under :func:`data_root`.

    Any name with a folder under the data root resolves (your own datasets too); a known name that is
    not there yet, a missing path, or an unknown name raise a one-line ``InputError`` saying what to do.
    """
    path = Path(value).expanduser()
    if path.exists():
        return path
    text = str(value)
    root = data_root()
    if not _looks_like_path(text) and (root / text).is_dir():
        return root / text
    if text in KNOWN_DATASETS:
        dataset = KNOWN_DATASETS[text]
        raise InputError(f"dataset {text!r} is not in '{root}': run `gantool data download {text}`, or put its "
                         f"{dataset.layout()} in '{root / text}' (GANTOOL_DATA sets another data root)")
    if _looks_like_path(text):
        raise InputError(f"data folder '{path}' does not exist")
    raise InputError(f"--data {text!r} is neither an existing folder nor a dataset in '{root}'"
                     f"{suggest(text, list(KNOWN_DATASETS))}; known names: {', '.join(KNOWN_DATASETS)}")


# -------------------------------------------------------------------------------------------- download

Progress = Callable[[int, int | None], None]


def download(name: str, root: str | Path | None = None, *, progress: Progress | None = None,
             timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """Fetch and extract the known dataset ``name`` into ``root/name`` (default root: :func:`data_root`).

    Returns the dataset folder. A dataset already present is left alone. The archive is downloaded to a
    temporary file and extracted to a temporary folder inside ``root``; only a complete, checked
    extraction is renamed to ``root/name``.

    Args:
        name: A key of :data:`KNOWN_DATASETS`.
        root: Folder that holds datasets.
        progress: Called with (bytes so far, total bytes or ``None``) while downloading.
        timeout: Seconds a connection may stall before giving up.

    Raises:
        UsageError: unknown name.
        InputError: no network or a failed download (one line saying where to put the data by hand), or
            an archive that is corrupt, unsafe, or lacks the expected folders.
    """
    dataset = known_dataset(name)
    root = Path(root) if root is not None else data_root()
    target = root / dataset.name
    if is_complete(target, dataset):
        return target
    if target.exists() and any(target.iterdir()):
        raise InputError(f"'{target}' exists but lacks {', '.join(f + '/' for f in dataset.required)}; move it "
                         "away and download again, or complete it by hand")
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".zip" if dataset.url.endswith(".zip") else ".tar.gz"
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{dataset.name}-", dir=root))
    try:
        archive = work / f"archive{suffix}"
        _fetch(dataset, archive, target, progress=progress, timeout=timeout)
        extracted = work / "extracted"
        try:
            extract_archive(archive, extracted)
        except InputError as error:  # name the archive by its address: the temporary file is gone by now
            raise InputError(str(error).replace(f"'{archive}'", dataset.url)) from None
        archive.unlink()
        found = _dataset_folder(extracted, dataset)
        if target.exists():
            target.rmdir()  # empty (checked above)
        found.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _fetch(dataset: KnownDataset, destination: Path, target: Path, *, progress: Progress | None,
           timeout: float) -> None:
    """Stream ``dataset.url`` into ``destination``; any network failure becomes one ``InputError`` line."""
    try:
        with urllib.request.urlopen(dataset.url, timeout=timeout) as response, destination.open("wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise InputError(f"cannot download {dataset.name!r} from {dataset.url} ({reason}); fetch it yourself and "
                         f"put its {dataset.layout()} in '{target}', or pass --data PATH to such a folder") from None


def _dataset_folder(extracted: Path, dataset: KnownDataset) -> Path:
    """The extracted folder holding the dataset: the archive's top folder, or the extraction itself."""
    candidates = [extracted, extracted / dataset.name]
    entries = [p for p in extracted.iterdir() if p.is_dir()] if extracted.is_dir() else []
    if len(entries) == 1:
        candidates.append(entries[0])
    for candidate in candidates:
        if is_complete(candidate, dataset):
            return candidate
    raise InputError(f"the archive {dataset.url} has no {', '.join(f + '/' for f in dataset.required)} folders; "
                     f"expected {dataset.layout()}")


# ------------------------------------------------------------------------------------ safe extraction


def _safe_relative(name: str, archive: Path) -> PurePosixPath | None:
    """The member path to create, or ``None`` for the archive root; refuses anything that could escape."""
    cleaned = name.replace("\\", "/")
    path = PurePosixPath(cleaned)
    if cleaned.startswith("/") or path.is_absolute() or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise InputError(f"refusing to extract '{archive}': member {name!r} has an absolute path")
    if ".." in path.parts:
        raise InputError(f"refusing to extract '{archive}': member {name!r} climbs out with '..'")
    parts = [p for p in path.parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else None


def _destination(target: Path, relative: PurePosixPath, name: str, archive: Path) -> Path:
    """``target / relative``, checked to stay inside ``target`` after resolving existing links."""
    destination = target.joinpath(*relative.parts)
    if not destination.resolve().is_relative_to(target.resolve()):
        raise InputError(f"refusing to extract '{archive}': member {name!r} would land outside '{target}'")
    return destination


def extract_archive(archive: str | Path, target: str | Path, *, max_bytes: int | None = None,
                    max_members: int | None = None) -> Path:
    """Extract a ``.zip`` or ``.tar(.gz|.bz2|.xz)`` into ``target``, refusing every unsafe member.

    Refused: absolute paths (also ``C:...``), ``..`` components, symbolic and hard links, devices and
    other special files, anything whose resolved destination is outside ``target``, and an archive whose
    members add up to more than ``max_bytes`` (default :data:`MAX_ARCHIVE_BYTES`), more than
    ``max_members`` (default :data:`MAX_ARCHIVE_MEMBERS`), or more than the free space where ``target``
    goes. Only regular files and folders are written, with default permissions, and no file is written
    past the size its header declared. The archive is checked completely before the first file is
    written, so a refused archive leaves ``target`` untouched (only a member whose data outruns its
    header, which the zip and tar readers already prevent, could stop half-way).

    Raises:
        InputError: unsafe member, too large, or a corrupt / unknown archive (naming the file).
    """
    archive, target = Path(archive), Path(target)
    limits = _Limits(archive, MAX_ARCHIVE_BYTES if max_bytes is None else max_bytes,
                     MAX_ARCHIVE_MEMBERS if max_members is None else max_members)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, target, limits)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, target, limits)
        else:
            raise InputError(f"'{archive}' is neither a zip nor a tar archive (an interrupted download?)")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
        raise InputError(f"'{archive}' is corrupt ({error}); delete it and download again") from None
    return target


#: A checked archive member: whether it is a folder, how to open its data, where it goes, its declared size.
_Member = tuple[bool, Callable[[], IO[bytes] | None], Path, int]


@dataclass
class _Limits:
    """Running totals of an archive's members against the size and count limits, checked member by member."""

    archive: Path
    max_bytes: int
    max_members: int
    members: int = 0
    size: int = 0

    def add(self, size: int) -> None:
        self.members += 1
        self.size += max(size, 0)
        if self.members > self.max_members:
            raise InputError(f"refusing to extract '{self.archive}': it has more than {self.max_members:,} members "
                             "(gantool.catalog.MAX_ARCHIVE_MEMBERS)")
        if self.size > self.max_bytes:
            raise InputError(f"refusing to extract '{self.archive}': its members unpack to more than "
                             f"{_gigabytes(self.max_bytes)} (gantool.catalog.MAX_ARCHIVE_BYTES)")

    def check_space(self, target: Path) -> None:
        """Refuse an archive that would not fit in the free space of the file system ``target`` goes to."""
        existing = next((p for p in (target, *target.parents) if p.exists()), None)
        if existing is None:
            return
        try:
            free = shutil.disk_usage(existing).free
        except OSError:
            return
        if self.size > free:
            raise InputError(f"refusing to extract '{self.archive}': it unpacks to {_gigabytes(self.size)} but only "
                             f"{_gigabytes(free)} are free in '{existing}'")


def _gigabytes(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 10**8 else f"{size:,} bytes"


def _extract_zip(archive: Path, target: Path, limits: _Limits) -> None:
    with zipfile.ZipFile(archive) as bundle:
        plan: list[_Member] = []
        for info in bundle.infolist():
            limits.add(info.file_size)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise InputError(f"refusing to extract '{archive}': member {info.filename!r} is a symbolic link")
            relative = _safe_relative(info.filename, archive)
            if relative is not None:
                destination = _destination(target, relative, info.filename, archive)
                plan.append((info.is_dir(), functools.partial(bundle.open, info), destination, info.file_size))
        limits.check_space(target)
        _write_members(plan, target, archive)


def _extract_tar(archive: Path, target: Path, limits: _Limits) -> None:
    with tarfile.open(archive) as bundle:
        plan: list[_Member] = []
        for member in bundle:  # one by one, so a huge member count is refused before it is all in memory
            limits.add(member.size if member.isfile() else 0)
            if member.issym() or member.islnk():
                raise InputError(f"refusing to extract '{archive}': member {member.name!r} is a link")
            if not (member.isfile() or member.isdir()):
                raise InputError(f"refusing to extract '{archive}': member {member.name!r} is a special file")
            relative = _safe_relative(member.name, archive)
            if relative is not None:
                destination = _destination(target, relative, member.name, archive)
                plan.append((member.isdir(), functools.partial(bundle.extractfile, member), destination,
                             member.size))
        limits.check_space(target)
        _write_members(plan, target, archive)


def _write_members(plan: list[_Member], target: Path, archive: Path) -> None:
    """Create the planned folders and files, once every member of the archive has passed the checks."""
    files = {destination for is_folder, _, destination, _ in plan if not is_folder}
    folders = {destination for is_folder, _, destination, _ in plan if is_folder}
    folders |= {parent for path in files | folders for parent in path.parents}
    clash = sorted(files & folders)
    if clash:
        raise InputError(f"refusing to extract '{archive}': '{clash[0].relative_to(target)}' is both a file and a "
                         "folder in it")
    target.mkdir(parents=True, exist_ok=True)
    for is_folder, open_member, destination, size in plan:
        if is_folder:
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        source = open_member()
        if source is None:  # pragma: no cover - regular tar files always have data
            continue
        with source, destination.open("wb") as out:
            _copy_at_most(source, out, size, archive, destination)


def _copy_at_most(source: IO[bytes], out: IO[bytes], size: int, archive: Path, destination: Path) -> None:
    """Copy a member's data, never more than the size its header declared (the size the limits counted)."""
    left = size
    while chunk := source.read(min(_CHUNK, left + 1)):
        left -= len(chunk)
        if left < 0:
            raise InputError(f"refusing to extract '{archive}': member '{destination.name}' holds more data than "
                             "its header declares")
        out.write(chunk)
