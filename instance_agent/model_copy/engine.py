"""The copy itself: the workers, the checksum of every slice, the disk, retries and progress.

- ``max_concurrency`` worker threads each GET one part at a time and stream it: each slice of
  ``slice_size`` (1 MiB) is received into the worker's ONE reused buffer, checksummed while it is
  still in the CPU cache (the CRC carried across the slices of a chunk and compared with the
  manifest at the chunk's end), and ``os.pwrite``-n at its offset into a file preallocated with
  ``posix_fallocate``, so network and disk overlap within every stream. Buffers in flight are
  ``max_concurrency x slice_size`` whatever the model and part sizes.
- A part that fails (dropped connection, 5xx, throttling, a short body) is retried on its own,
  from the start of its range, with jittered exponential backoff; a part whose checksum differs
  is read again once, then the copy fails with :class:`ModelChecksumMismatch` naming the file
  and byte range of the chunk.
- Files are written as ``<name>.partial`` and renamed into place only once every part is verified;
  on any failure or cancel the ``.partial`` files are removed, so nothing half-written is ever
  mistaken for the model.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from instance_agent.checksums import Buffer
from instance_agent.errors import ModelChecksumMismatch, ModelCopyFailed
from instance_agent.manifest import Manifest
from instance_agent.model_copy.plan import (
    CopyPlan,
    FileTask,
    Part,
    plan_copy,
    plan_parts,
    read_manifest,
)
from instance_agent.model_copy.settings import CopySettings, MiB
from instance_agent.model_copy.transport import (
    Connections,
    LeanPathRefused,
    RangeReader,
    RetryablePartError,
)
from run_contract.s3_layout import MODEL_MANIFEST

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# One logger for the whole copy engine, as before it was a package: the lines keep their name.
logger = logging.getLogger("instance_agent.model_copy")

# A part whose bytes differ from the manifest is re-read this many times before failing.
CHECKSUM_REREADS = 1


@dataclass(frozen=True)
class CopyProgress:
    """A progress report; MB are 10^6 bytes. ``eta_seconds`` is None until bytes have arrived."""

    bytes_done: int
    bytes_total: int
    seconds: float
    mb_per_s: float
    eta_seconds: float | None


@dataclass(frozen=True)
class CopyReport:
    """What was copied, how fast (MB = 10^6 bytes), and the manifest's ``model_version``."""

    files: int
    bytes: int
    seconds: float
    mb_per_s: float
    model_version: str


class CopyCancelled(ModelCopyFailed):
    """The copy was cancelled through its ``cancel`` event; partial files were removed."""


def copy_model(
    s3: S3Client,
    bucket: str,
    prefix: str,
    destination: Path,
    *,
    settings: CopySettings | None = None,
    progress: Callable[[CopyProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> CopyReport:
    """Copy the model published at ``s3://bucket/prefix`` into ``destination``, verified.

    Raises ModelNotFound (manifest or a listed object missing), ModelChecksumMismatch (names the
    file and byte range), ModelCopyFailed (retries exhausted, disk errors, bad manifest; its
    subclass CopyCancelled when ``cancel`` is set).
    """
    settings = settings or CopySettings()
    cancel = cancel or threading.Event()
    if not bucket:
        raise ModelCopyFailed("model bucket is empty: set model.bucket to the model bucket's name")
    if prefix and not prefix.endswith("/"):
        raise ModelCopyFailed(f"model prefix {prefix!r} must end with '/' (e.g. models/current/)")
    started = time.monotonic()
    manifest = read_manifest(s3, bucket, prefix)
    largest = max((f.size for f in manifest.files), default=0)
    plan = plan_copy(manifest.total_bytes, largest, manifest.chunk_size, settings)
    pool = getattr(getattr(s3.meta, "config", None), "max_pool_connections", None)
    if isinstance(pool, int) and pool < plan.max_concurrency:
        logger.warning(
            "the S3 client pools %d connections for %d streams: extra connections are opened "
            "per part; build it with instance_agent.model_copy.client_config(%d)",
            pool,
            plan.max_concurrency,
            plan.max_concurrency,
        )
    logger.info(
        "copying model %s (%d files, %d bytes) from s3://%s/%s to %s: %d streams x %d MiB parts "
        "in slices of %d KiB (%d KiB of buffers)",
        manifest.model_version,
        len(manifest.files),
        manifest.total_bytes,
        bucket,
        prefix,
        destination,
        plan.max_concurrency,
        plan.part_size // MiB,
        plan.slice_size // 1024,
        plan.buffer_bytes // 1024,
    )
    copier = _Copier(
        s3=s3,
        bucket=bucket,
        prefix=prefix,
        destination=destination,
        manifest=manifest,
        plan=plan,
        settings=settings,
        cancel=cancel,
    )
    copier.run(progress, started)
    seconds = time.monotonic() - started
    report = CopyReport(
        files=len(manifest.files),
        bytes=manifest.total_bytes,
        seconds=seconds,
        mb_per_s=manifest.total_bytes / 1e6 / seconds if seconds > 0 else 0.0,
        model_version=manifest.model_version,
    )
    logger.info(
        "copied model %s: %d files, %d bytes in %.2f s (%.0f MB/s)",
        report.model_version,
        report.files,
        report.bytes,
        report.seconds,
        report.mb_per_s,
    )
    return report


class _Copier:
    """One copy: the shared part queue, the workers, the files in flight, the first failure."""

    def __init__(
        self,
        *,
        s3: S3Client,
        bucket: str,
        prefix: str,
        destination: Path,
        manifest: Manifest,
        plan: CopyPlan,
        settings: CopySettings,
        cancel: threading.Event,
    ) -> None:
        self.bucket = bucket
        self.manifest = manifest
        self.plan = plan
        self.settings = settings
        self.cancel = cancel
        self.lock = threading.Lock()
        self.failure: BaseException | None = None
        self.stop = threading.Event()
        self.bytes_done = 0
        self.files, parts = plan_parts(manifest, prefix, destination, plan.part_size)
        self.parts = iter(parts)
        self.reader = RangeReader(s3, bucket, settings.transport, prefix + MODEL_MANIFEST)

    # -- orchestration ----------------------------------------------------------------------

    def run(self, progress: Callable[[CopyProgress], None] | None, started: float) -> None:
        try:
            self._prepare()
            workers = [
                threading.Thread(target=self._worker, name=f"model-copy-{n}", daemon=True)
                for n in range(self.plan.max_concurrency)
            ]
            for worker in workers:
                worker.start()
            interval = self.settings.progress_interval_seconds
            next_report = time.monotonic() + interval
            while alive := [w for w in workers if w.is_alive()]:
                # Poll: the main thread relays cancel and reports progress while workers copy.
                alive[0].join(timeout=0.1)
                if self.cancel.is_set():
                    self.stop.set()
                if progress and not self.stop.is_set() and time.monotonic() >= next_report:
                    next_report = time.monotonic() + interval
                    progress(self._progress(started))
            self._raise_failure()
            if progress:
                progress(self._progress(started))
        except BaseException:
            self.stop.set()
            self._remove_partials()
            raise

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.cancel.is_set() or not all(task.done for task in self.files):
            raise CopyCancelled(
                f"model copy cancelled after {self.bytes_done} of "
                f"{self.manifest.total_bytes} bytes; partial files removed"
            )

    def _progress(self, started: float) -> CopyProgress:
        with self.lock:
            done = self.bytes_done
        seconds = time.monotonic() - started
        rate = done / seconds if seconds > 0 else 0.0
        remaining = self.manifest.total_bytes - done
        return CopyProgress(
            bytes_done=done,
            bytes_total=self.manifest.total_bytes,
            seconds=seconds,
            mb_per_s=rate / 1e6,
            eta_seconds=remaining / rate if rate > 0 else None,
        )

    def _prepare(self) -> None:
        """Create every ``.partial`` file at its full size, so writes land at their offsets."""
        for task in self.files:
            try:
                task.final.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(
                    task.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644
                )
                try:
                    _preallocate(fd, task.entry.size)
                finally:
                    os.close(fd)
            except OSError as error:
                raise ModelCopyFailed(
                    _disk_error(task, error, self.manifest.total_bytes)
                ) from error
            if task.entry.size == 0:
                self.reader.check_empty_object(task)
                self._finish(task)

    def _remove_partials(self) -> None:
        for task in self.files:
            if not task.done:
                try:
                    task.partial.unlink(missing_ok=True)
                except OSError as error:
                    logger.warning("could not remove %s: %s", task.partial, error)

    def _finish(self, task: FileTask) -> None:
        # No fsync: the instance store is scratch space that dies with the instance.
        try:
            os.replace(task.partial, task.final)
        except OSError as error:
            raise ModelCopyFailed(
                f"{task.entry.path}: cannot rename into place: {error}"
            ) from error
        task.done = True

    def _next_part(self) -> Part | None:
        with self.lock:
            return next(self.parts, None)

    # -- one worker ---------------------------------------------------------------------------

    def _worker(self) -> None:
        buffer: memoryview | None = None
        connections = self.reader.connections()
        try:
            while not self.stop.is_set() and not self.cancel.is_set():
                part = self._next_part()
                if part is None:
                    return
                if buffer is None:
                    # One slice buffer per worker for the whole copy: memory is bounded by design.
                    buffer = memoryview(bytearray(self.plan.slice_size))
                self._copy_part(part, buffer, connections)
                with self.lock:
                    self.bytes_done += part.length
                    part.file.parts_left -= 1
                    finished = part.file.parts_left == 0
                if finished:
                    self._finish(part.file)
        except _Stopped:
            return  # another worker failed, or the copy was cancelled: the main thread reports
        except BaseException as error:  # re-raised by the main thread
            with self.lock:
                if self.failure is None:
                    self.failure = error
            self.stop.set()
        finally:
            if connections is not None:
                connections.close()

    def _copy_part(self, part: Part, buffer: memoryview, connections: Connections | None) -> None:
        """GET the part's range once, streaming it to disk; retry or re-read it whole if needed."""
        task = part.file
        try:
            fd = os.open(task.partial, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as error:
            raise ModelCopyFailed(_disk_error(task, error, self.manifest.total_bytes)) from error
        try:
            attempt = 0
            rereads = 0
            while True:
                try:
                    self._stream_part(part, buffer, fd, connections)
                except _ChunkMismatch as bad:
                    if rereads >= CHECKSUM_REREADS:
                        raise ModelChecksumMismatch(
                            f"{task.entry.path}: bytes {bad.start}-{bad.end} (chunk {bad.index}) "
                            f"have crc64nvme {bad.got}, the manifest says "
                            f"{task.entry.checksums[bad.index]}; s3://{self.bucket}/{task.key} "
                            "is not what was published: re-publish the model"
                        ) from None
                    rereads += 1
                    logger.warning(
                        "%s bytes %d-%d: checksum differs, reading the part again",
                        task.entry.path,
                        bad.start,
                        bad.end,
                    )
                except RetryablePartError as error:
                    attempt += 1
                    self._back_off(part, attempt, error)
                except LeanPathRefused as refused:
                    self.reader.refuse_lean_path(refused)
                else:
                    return
        finally:
            os.close(fd)

    def _back_off(self, part: Part, attempt: int, error: RetryablePartError) -> None:
        where = f"{part.file.entry.path} bytes {part.start}-{part.start + part.length - 1}"
        if attempt > self.settings.part_retries:
            raise ModelCopyFailed(
                f"{where} of s3://{self.bucket}/{part.file.key}: failed {attempt} times, "
                f"last: {error}"
            ) from error
        delay = random.uniform(  # noqa: S311 - jitter, not cryptography
            0, min(self.settings.retry_max_seconds, self.settings.retry_base_seconds * 2**attempt)
        )
        logger.warning("%s: %s; retry %d in %.2f s", where, error, attempt, delay)
        if self.cancel.wait(delay) or self.stop.is_set():
            raise CopyCancelled(f"model copy cancelled while retrying {where}") from error

    def _stream_part(
        self, part: Part, buffer: memoryview, fd: int, connections: Connections | None
    ) -> None:
        """Receive the range slice by slice: checksum each slice while it is in cache (the CRC
        carried across the slices of a chunk, checked at each chunk's end), then ``pwrite`` it
        at its offset. Raises RetryablePartError or _ChunkMismatch; the part then starts over.
        """
        body = self.reader.open(part, connections)
        complete = False
        try:
            crc = _crc64nvme()
            chunk = self.manifest.chunk_size
            entry = part.file.entry
            offset, end = part.start, part.start + part.length
            running = 0
            while offset < end:
                if self.stop.is_set() or self.cancel.is_set():
                    raise _Stopped
                try:
                    n = body.readinto(buffer[: min(len(buffer), end - offset)])
                except self.reader.transient as error:
                    raise RetryablePartError(f"{type(error).__name__}: {error}") from error
                if not n:
                    raise RetryablePartError(
                        f"connection ended after {offset - part.start} of {part.length} bytes"
                    )
                data = buffer[:n]
                at = offset
                while at < offset + n:
                    boundary = min((at // chunk + 1) * chunk, entry.size)
                    take = min(offset + n, boundary) - at
                    running = crc(data[at - offset : at - offset + take], running)
                    at += take
                    if at == boundary:
                        index = (boundary - 1) // chunk
                        got = f"{running:016x}"
                        if got != entry.checksums[index]:
                            raise _ChunkMismatch(index, index * chunk, boundary - 1, got)
                        running = 0
                self._write_at(part.file, fd, data, offset)
                offset += n
            complete = True
        finally:
            body.finish(reuse=complete)

    def _write_at(self, task: FileTask, fd: int, data: memoryview, offset: int) -> None:
        try:
            written = 0
            while written < len(data):
                written += os.pwrite(fd, data[written:], offset + written)
        except OSError as error:
            raise ModelCopyFailed(_disk_error(task, error, self.manifest.total_bytes)) from error


class _Stopped(Exception):
    """The copy stopped (a failure elsewhere, or cancel) in the middle of a part."""


class _ChunkMismatch(Exception):
    """A chunk's CRC differs from the manifest's; the part is read once more, then it fails."""

    def __init__(self, index: int, start: int, end: int, got: str) -> None:
        super().__init__(f"chunk {index} (bytes {start}-{end}) has crc64nvme {got}")
        self.index, self.start, self.end, self.got = index, start, end, got


def _crc64nvme() -> Callable[[Buffer, int], int]:
    from awscrt import checksums  # lazy: keeps agent start-up light

    crc: Callable[[Buffer, int], int] = checksums.crc64nvme
    return crc


def _preallocate(fd: int, size: int) -> None:
    if size == 0:
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as error:
        # Some filesystems cannot preallocate; a sparse file of the right size still works.
        if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        os.ftruncate(fd, size)


def _disk_error(task: FileTask, error: OSError, total: int) -> str:
    if error.errno == errno.ENOSPC:
        return (
            f"{task.partial}: no space left on the device ({total} bytes needed for the model): "
            "use a bigger instance store or a smaller model"
        )
    return f"{task.partial}: {error.strerror or error}"
