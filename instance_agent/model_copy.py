"""Copy a published model from S3 to local disk as fast as the machine allows, verified.

How (each choice measured with ``python -m bench``, see ``instance_agent/BENCHMARKING.md``):

- The manifest (``<prefix>manifest.json``) is read first; it lists every file with its size and a
  CRC64/NVME per chunk. Every file becomes ranged parts of ``part_size`` (64 MiB: few requests;
  a multiple of the chunk size), and all parts of all files go into one shared queue, so small
  files never serialise the copy.
- ``max_concurrency`` worker threads each GET one part at a time and stream it: each slice of
  ``slice_size`` (1 MiB) is received into the worker's ONE reused buffer, checksummed while it is
  still in the CPU cache (the CRC carried across the slices of a chunk and compared with the
  manifest at the chunk's end), and ``os.pwrite``-n at its offset into a file preallocated with
  ``posix_fallocate``, so network and disk overlap within every stream. Buffers in flight are
  ``max_concurrency x slice_size`` whatever the model and part sizes.
- The GETs go, by default, on each worker's own keep-alive ``http.client`` connection to a URL
  that the caller's boto3 client presigned with SigV4 (its endpoint, addressing style, region,
  credentials and session token): no botocore machinery per request. The manifest, empty files
  and every decision that needs botocore stay on the client; when the client cannot be bypassed
  (moto's mock or another ``before-send`` hook, a proxy, SigV2 presigning, presigning on the
  legacy global endpoint) the GETs go through it, and a presigned GET answered with a redirect
  moves the rest of the copy onto it (``transport``: ``auto``, ``http`` or ``boto3``).
- A part that fails (dropped connection, 5xx, throttling, a short body) is retried on its own,
  from the start of its range, with jittered exponential backoff; a part whose checksum differs
  is read again once, then the copy fails with :class:`ModelChecksumMismatch` naming the file
  and byte range of the chunk.
- Files are written as ``<name>.partial`` and renamed into place only once every part is verified;
  on any failure or cancel the ``.partial`` files are removed, so nothing half-written is ever
  mistaken for the model.

The caller's client should be built with :func:`client_config` (SigV4 presigning, and
``max_pool_connections >= max_concurrency`` for the parts that go through it).
"""

from __future__ import annotations

import errno
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from instance_agent.checksums import Buffer
from instance_agent.errors import ModelChecksumMismatch, ModelCopyFailed, ModelNotFound
from instance_agent.manifest import (
    PARTIAL_SUFFIX,
    Manifest,
    ManifestError,
    ManifestFile,
    parse_manifest,
)
from run_contract.s3_layout import MODEL_MANIFEST, NOT_FOUND_CODES

if TYPE_CHECKING:
    import http.client

    from botocore.config import Config
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
# Bigger parts mean fewer requests and less per-part overhead; on loopback 64 MiB beat 8-32 MiB.
# Parts are streamed, so their size no longer costs memory.
DEFAULT_PART_SIZE = 64 * MiB
# Bytes received, checksummed and written at a time: small enough to still be in the CPU cache
# when checksummed and written, big enough that the per-slice Python is negligible.
DEFAULT_SLICE_SIZE = 1 * MiB
MIN_SLICE_SIZE = 64 * 1024
MAX_SLICE_SIZE = 64 * MiB
MIN_CONCURRENCY = 2
MAX_CONCURRENCY = 64
MAX_CONCURRENCY_SETTING = 256
TRANSPORTS = ("auto", "http", "boto3")
# A presigned URL is used at once; a short life limits what a leaked log line could do.
PRESIGN_SECONDS = 900
# A part whose bytes differ from the manifest is re-read this many times before failing.
CHECKSUM_REREADS = 1
# Answers to a presigned GET that the boto3 client handles (it follows S3's region redirects).
_REDIRECT_CODES = frozenset(
    {"PermanentRedirect", "TemporaryRedirect", "AuthorizationHeaderMalformed"}
)
_RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
    }
)


@dataclass(frozen=True)
class CopySettings:
    """How to copy. ``None`` means chosen from the model's size and ``os.cpu_count()``."""

    part_size: int | None = None
    max_concurrency: int | None = None
    slice_size: int = DEFAULT_SLICE_SIZE
    # "http": GETs on the workers' own connections to URLs botocore presigns; "boto3": GETs
    # through the client; "auto": "http" unless the client cannot be bypassed (see _lean_http).
    transport: str = "auto"
    part_retries: int = 5
    retry_base_seconds: float = 0.2
    retry_max_seconds: float = 5.0
    progress_interval_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.part_size is not None and (
            not _is_int(self.part_size) or not MiB // 16 <= self.part_size <= 1024 * MiB
        ):
            raise ValueError(
                f"part_size is {self.part_size!r}: give bytes between {MiB // 16} and "
                f"{1024 * MiB}, or None to choose from the model size"
            )
        if self.max_concurrency is not None and (
            not _is_int(self.max_concurrency)
            or not 1 <= self.max_concurrency <= MAX_CONCURRENCY_SETTING
        ):
            raise ValueError(
                f"max_concurrency is {self.max_concurrency!r}: give 1 to "
                f"{MAX_CONCURRENCY_SETTING}, or None to choose from the CPU count"
            )
        if not _is_int(self.slice_size) or not MIN_SLICE_SIZE <= self.slice_size <= MAX_SLICE_SIZE:
            raise ValueError(
                f"slice_size is {self.slice_size!r}: give bytes between {MIN_SLICE_SIZE} and "
                f"{MAX_SLICE_SIZE}"
            )
        if self.transport not in TRANSPORTS:
            raise ValueError(
                f"transport is {self.transport!r}: give one of {', '.join(TRANSPORTS)}"
            )
        if not _is_int(self.part_retries) or self.part_retries < 0:
            raise ValueError(f"part_retries is {self.part_retries!r}: give an integer >= 0")
        for name in ("retry_base_seconds", "retry_max_seconds", "progress_interval_seconds"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} is {value!r}: give a number of seconds >= 0")


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


@dataclass(frozen=True)
class CopyPlan:
    """Streams, part (range) size and slice size; the buffers are one slice per stream."""

    part_size: int
    max_concurrency: int
    slice_size: int = DEFAULT_SLICE_SIZE

    @property
    def buffer_bytes(self) -> int:
        return self.slice_size * self.max_concurrency


def plan_copy(
    total_bytes: int, largest_file: int, chunk_size: int, settings: CopySettings
) -> CopyPlan:
    """Choose streams and part size: the settings when given, else from size and CPU count.

    Streams: one per vCPU up to 3 vCPUs, at least 2 (on 2 vCPUs and loopback the copy is
    CPU-bound, and 2 streams beat 3 and 4: every extra thread adds GIL hand-overs); from 4
    vCPUs, 2 per vCPU up to 64 (S3 gives about 100 MB/s per stream, so the network-bound big
    instances need many, and a waiting stream costs no CPU). Part size: 64 MiB, lowered so a
    small model still spreads over every stream; parts are streamed through one slice buffer
    per stream, so part size does not cost memory. Always a multiple of the manifest's chunk
    size.
    """
    concurrency = settings.max_concurrency
    if concurrency is None:
        cpus = os.cpu_count() or 1
        concurrency = min(MAX_CONCURRENCY, max(MIN_CONCURRENCY, cpus if cpus < 4 else 2 * cpus))
    part_size = settings.part_size
    if part_size is None:
        part_size = min(DEFAULT_PART_SIZE, -(-total_bytes // concurrency))
    part_size = max(chunk_size, -(-part_size // chunk_size) * chunk_size)
    # No buffer needs to be bigger than the largest file, rounded up to a whole chunk.
    part_size = min(part_size, max(chunk_size, -(-largest_file // chunk_size) * chunk_size))
    parts = sum(1 for _ in range(0, max(total_bytes, 1), part_size))
    return CopyPlan(
        part_size=part_size,
        max_concurrency=max(1, min(concurrency, parts)),
        slice_size=min(settings.slice_size, part_size),
    )


def client_config(
    max_concurrency: int, *, connect_timeout: float = 10, read_timeout: float = 60
) -> Config:
    """A botocore Config for the copy's client: enough pooled connections, standard retries,
    and SigV4 for presigned URLs too (botocore presigns S3 URLs with SigV2 unless told, which
    the regions opened since 2014 refuse), so the copy's lean HTTP path can be used."""
    from botocore.config import Config  # lazy import

    return Config(
        signature_version="s3v4",
        max_pool_connections=max_concurrency,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": 3, "mode": "standard"},
        tcp_keepalive=True,
    )


@dataclass
class _FileTask:
    entry: ManifestFile
    key: str
    final: Path
    partial: Path
    parts_left: int
    done: bool = False


@dataclass(frozen=True)
class _Part:
    file: _FileTask
    index: int
    start: int
    length: int


class _RetryablePartError(Exception):
    """A part failed in a way another attempt can fix."""


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
    manifest = _read_manifest(s3, bucket, prefix)
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


def _read_manifest(s3: S3Client, bucket: str, prefix: str) -> Manifest:
    from botocore.exceptions import BotoCoreError, ClientError  # lazy import

    key = prefix + MODEL_MANIFEST
    url = f"s3://{bucket}/{key}"
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in NOT_FOUND_CODES or code == "NoSuchBucket":
            raise ModelNotFound(
                f"{url} does not exist ({code}): publish the model to that prefix first "
                "(`python -m instance_agent publish`), or fix model.prefix"
            ) from None
        raise ModelCopyFailed(f"cannot read {url}: {error}") from error
    except BotoCoreError as error:
        raise ModelCopyFailed(f"cannot read {url}: {error}") from error
    try:
        return parse_manifest(data, url)
    except ManifestError as error:
        raise ModelCopyFailed(f"invalid model manifest: {error}") from None


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
        self.s3 = s3
        self.bucket = bucket
        self.manifest = manifest
        self.plan = plan
        self.settings = settings
        self.cancel = cancel
        self.lock = threading.Lock()
        self.failure: BaseException | None = None
        self.stop = threading.Event()
        self.bytes_done = 0
        root = destination.resolve()
        self.files = [
            _FileTask(
                entry=entry,
                key=prefix + entry.path,
                final=root / entry.path,
                partial=root / (entry.path + PARTIAL_SUFFIX),
                parts_left=-(-entry.size // plan.part_size),
            )
            for entry in manifest.files
        ]
        self.parts = iter(
            [
                _Part(task, index, start, min(plan.part_size, task.entry.size - start))
                for task in self.files
                for index, start in enumerate(range(0, task.entry.size, plan.part_size))
            ]
        )
        from botocore.exceptions import ClientError  # lazy import

        self.client_error = ClientError
        self.transient = _transient_errors()
        self.http = _lean_http(s3, settings.transport, bucket, prefix + MODEL_MANIFEST)
        self.lean_refused = False

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
                self._check_empty_object(task)
                self._finish(task)

    def _check_empty_object(self, task: _FileTask) -> None:
        # An empty file has no part to GET; still prove the object exists and is empty.
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=task.key)
        except self.client_error as error:
            self._raise_client_error(task, error, "0-0")
        if head.get("ContentLength", 0) != 0:
            raise ModelChecksumMismatch(
                f"{task.entry.path}: s3://{self.bucket}/{task.key} is "
                f"{head.get('ContentLength')} bytes, the manifest says 0: re-publish the model"
            )

    def _remove_partials(self) -> None:
        for task in self.files:
            if not task.done:
                try:
                    task.partial.unlink(missing_ok=True)
                except OSError as error:
                    logger.warning("could not remove %s: %s", task.partial, error)

    def _finish(self, task: _FileTask) -> None:
        # No fsync: the instance store is scratch space that dies with the instance.
        try:
            os.replace(task.partial, task.final)
        except OSError as error:
            raise ModelCopyFailed(
                f"{task.entry.path}: cannot rename into place: {error}"
            ) from error
        task.done = True

    def _next_part(self) -> _Part | None:
        with self.lock:
            return next(self.parts, None)

    # -- one worker ---------------------------------------------------------------------------

    def _worker(self) -> None:
        buffer: memoryview | None = None
        connections = _Connections(self.http) if self.http is not None else None
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

    def _copy_part(self, part: _Part, buffer: memoryview, connections: _Connections | None) -> None:
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
                except _RetryablePartError as error:
                    attempt += 1
                    self._back_off(part, attempt, error)
                except _LeanPathRefused as refused:
                    self._refuse_lean_path(refused)
                else:
                    return
        finally:
            os.close(fd)

    def _refuse_lean_path(self, refused: _LeanPathRefused) -> None:
        with self.lock:
            first = not self.lean_refused
            self.lean_refused = True
        if first:
            logger.warning(
                "the endpoint answered a presigned GET with %s (e.g. the bucket is in another "
                "region than the client's): the remaining GETs go through the boto3 client, "
                "which follows S3's redirects",
                refused,
            )

    def _back_off(self, part: _Part, attempt: int, error: _RetryablePartError) -> None:
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
        self, part: _Part, buffer: memoryview, fd: int, connections: _Connections | None
    ) -> None:
        """Receive the range slice by slice: checksum each slice while it is in cache (the CRC
        carried across the slices of a chunk, checked at each chunk's end), then ``pwrite`` it
        at its offset. Raises _RetryablePartError or _ChunkMismatch; the part then starts over.
        """
        body = self._open_range(part, connections)
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
                except self.transient as error:
                    raise _RetryablePartError(f"{type(error).__name__}: {error}") from error
                if not n:
                    raise _RetryablePartError(
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

    def _write_at(self, task: _FileTask, fd: int, data: memoryview, offset: int) -> None:
        try:
            written = 0
            while written < len(data):
                written += os.pwrite(fd, data[written:], offset + written)
        except OSError as error:
            raise ModelCopyFailed(_disk_error(task, error, self.manifest.total_bytes)) from error

    def _open_range(self, part: _Part, connections: _Connections | None) -> _Body:
        if connections is not None and not self.lean_refused:
            return self._open_http(part, connections)
        return self._open_boto3(part)

    def _open_boto3(self, part: _Part) -> _Body:
        byte_range = f"{part.start}-{part.start + part.length - 1}"
        try:
            response = self.s3.get_object(
                Bucket=self.bucket, Key=part.file.key, Range=f"bytes={byte_range}"
            )
        except self.client_error as error:
            self._raise_client_error(part.file, error, byte_range)
        except self.transient as error:
            raise _RetryablePartError(f"{type(error).__name__}: {error}") from error
        body = _Boto3Body(response["Body"])
        try:
            total = str(response.get("ContentRange", "")).rpartition("/")[2]
            self._check_size(part, total, response.get("ContentLength"))
        except BaseException:
            body.finish(reuse=False)
            raise
        return body

    def _open_http(self, part: _Part, connections: _Connections) -> _Body:
        """The lean path: one GET on this worker's own keep-alive connection to a URL that
        botocore presigned (its endpoint, addressing style, region, credentials and session
        token), so no botocore machinery runs per request."""
        byte_range = f"{part.start}-{part.start + part.length - 1}"
        url = self.s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": part.file.key},
            ExpiresIn=PRESIGN_SECONDS,
        )
        try:
            response = connections.get(url, {"Range": f"bytes={byte_range}"})
        except self.transient as error:
            raise _RetryablePartError(f"{type(error).__name__}: {error}") from error
        body = _HttpBody(response, connections)
        try:
            self._check_http_response(part, response, byte_range)
        except self.transient as error:
            body.finish(reuse=False)
            raise _RetryablePartError(f"{type(error).__name__}: {error}") from error
        except BaseException:
            body.finish(reuse=False)
            raise
        return body

    def _check_http_response(
        self, part: _Part, response: http.client.HTTPResponse, byte_range: str
    ) -> None:
        status = response.status
        if status >= 300:
            code = _error_code(_read_error_body(response))
            if status in (301, 307) or code in _REDIRECT_CODES:
                raise _LeanPathRefused(f"HTTP {status} {code}")
            self._raise_error(part.file, code, status, f"HTTP {status} {code}", byte_range)
        if status != 206 and not (status == 200 and part.start == 0):
            raise _RetryablePartError(f"HTTP {status} to a ranged GET")
        total = (response.getheader("Content-Range") or "").rpartition("/")[2]
        length = response.getheader("Content-Length")
        self._check_size(part, total, int(length) if length and length.isdigit() else None)

    def _check_size(self, part: _Part, total: str, length: int | None) -> None:
        size = part.file.entry.size
        if total.isdigit() and int(total) != size:
            raise ModelChecksumMismatch(
                f"{part.file.entry.path}: s3://{self.bucket}/{part.file.key} is {total} bytes, "
                f"the manifest says {size}: the object changed since it was published; "
                "re-publish the model"
            )
        if length not in (None, part.length):
            raise _RetryablePartError(f"asked for {part.length} bytes, the response has {length}")

    def _raise_client_error(self, task: _FileTask, error: Any, byte_range: str) -> NoReturn:
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        self._raise_error(task, code, status, str(error), byte_range)

    def _raise_error(
        self, task: _FileTask, code: str, status: object, message: str, byte_range: str
    ) -> NoReturn:
        url = f"s3://{self.bucket}/{task.key}"
        if code in NOT_FOUND_CODES or code == "NoSuchBucket" or (status == 404 and not code):
            raise ModelNotFound(
                f"{url} ({task.entry.path}) is listed in the manifest but missing: "
                "re-publish the model"
            ) from None
        if code == "InvalidRange" or status == 416:
            raise ModelChecksumMismatch(
                f"{task.entry.path}: bytes {byte_range} are past the end of {url}, the manifest "
                f"says it is {task.entry.size} bytes: re-publish the model"
            ) from None
        if code in _RETRYABLE_CODES or (isinstance(status, int) and status >= 500):
            raise _RetryablePartError(f"{code or status}: {message}")
        raise ModelCopyFailed(f"{url} bytes {byte_range}: {message}")


class _LeanPathRefused(Exception):
    """The endpoint redirects the presigned GETs; the client's own requests can follow it."""


class _Stopped(Exception):
    """The copy stopped (a failure elsewhere, or cancel) in the middle of a part."""


class _ChunkMismatch(Exception):
    """A chunk's CRC differs from the manifest's; the part is read once more, then it fails."""

    def __init__(self, index: int, start: int, end: int, got: str) -> None:
        super().__init__(f"chunk {index} (bytes {start}-{end}) has crc64nvme {got}")
        self.index, self.start, self.end, self.got = index, start, end, got


class _Body:
    """One response body being streamed: ``readinto`` a slice, then ``finish`` it."""

    def readinto(self, view: memoryview) -> int:
        raise NotImplementedError

    def finish(self, *, reuse: bool) -> None:
        """``reuse``: the whole body was read, so its connection can serve the next GET."""
        raise NotImplementedError


class _Boto3Body(_Body):
    """A botocore StreamingBody. With a real connection it wraps urllib3, which wraps
    ``http.client``: ``readinto`` on the latter lands the bytes from the socket straight in our
    buffer. Anything else (moto's in-process responses) is read the generic way."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.raw = getattr(body, "_raw_stream", None)
        fp = getattr(self.raw, "_fp", None)
        usable = fp is not None and hasattr(fp, "readinto") and not getattr(self.raw, "chunked", 0)
        self.fp = fp if usable else None

    def readinto(self, view: memoryview) -> int:
        if self.fp is not None:
            return int(self.fp.readinto(view))
        data = self.body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def finish(self, *, reuse: bool) -> None:
        if reuse and self.fp is not None and self.fp.isclosed():
            self.raw.release_conn()  # type: ignore[union-attr]  # back to urllib3's pool for the next part
        elif not reuse:
            self.body.close()


class _HttpBody(_Body):
    def __init__(self, response: http.client.HTTPResponse, connections: _Connections) -> None:
        self.response = response
        self.connections = connections

    def readinto(self, view: memoryview) -> int:
        return self.response.readinto(view)

    def finish(self, *, reuse: bool) -> None:
        if not (reuse and self.response.isclosed()):
            self.connections.discard()


@dataclass(frozen=True)
class _HttpOptions:
    """What the lean path takes from the caller's client: its timeouts and TLS verification."""

    connect_timeout: float
    read_timeout: float
    verify: bool | str


class _Connections:
    """One worker's keep-alive connection (per host) for the lean path."""

    def __init__(self, options: _HttpOptions) -> None:
        self.options = options
        self.key: tuple[str, str] | None = None
        self.connection: http.client.HTTPConnection | None = None

    def get(self, url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if self.connection is None or self.key != key:
            self.discard()
            self.connection = self._connect(*key)
            self.key = key
        target = parts.path + ("?" + parts.query if parts.query else "")
        try:
            self.connection.request("GET", target, headers=headers)
            return self.connection.getresponse()
        except BaseException:
            self.discard()
            raise

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        timeout = max(self.options.connect_timeout, self.options.read_timeout)
        import http.client  # lazy import

        if scheme == "http":
            return http.client.HTTPConnection(netloc, timeout=timeout)
        import ssl  # lazy import: only for https endpoints

        verify = self.options.verify
        context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
        if verify is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(netloc, timeout=timeout, context=context)

    def discard(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.connection = None
        self.key = None

    def close(self) -> None:
        self.discard()


def _read_error_body(response: http.client.HTTPResponse) -> str:
    return response.read(64 * 1024).decode("utf-8", "replace")


def _error_code(body: str) -> str:
    match = re.search(r"<Code>([^<]{1,100})</Code>", body)
    return match.group(1) if match else ""


def _crc64nvme() -> Callable[[Buffer, int], int]:
    from awscrt import checksums  # lazy: keeps agent start-up light

    crc: Callable[[Buffer, int], int] = checksums.crc64nvme
    return crc


def _lean_http(s3: Any, transport: str, bucket: str, key: str) -> _HttpOptions | None:
    """The lean path's options, or None when the GETs must go through the client.

    ``auto`` bypasses the client only when nothing is lost: it presigns with SigV4 (see
    :func:`client_config`) on a regional endpoint, it goes through no proxy, and nothing
    intercepts its requests (moto's mock or any other ``before-send`` hook must see the GETs; a
    hook that says it is disabled, as moto's does outside ``mock_aws``, does not count). The
    lean path keeps the client's timeouts and TLS verification (its CA bundle, or none).
    """
    if transport == "boto3":
        return None
    config = s3.meta.config
    session = getattr(getattr(s3, "_endpoint", None), "http_session", None)
    verify = getattr(session, "_verify", True)
    options = _HttpOptions(
        connect_timeout=float(getattr(config, "connect_timeout", 60) or 60),
        read_timeout=float(getattr(config, "read_timeout", 60) or 60),
        verify=verify if isinstance(verify, bool | str) else True,
    )
    if transport == "http":
        return options
    # Presigning is local (no request); the URL says which signature and host the client uses.
    url = str(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}))
    host = urlsplit(url).hostname or ""
    if "X-Amz-Signature=" not in url:
        reason = "the client does not presign with SigV4 (build it with client_config)"
    elif (host == "s3.amazonaws.com" or host.endswith(".s3.amazonaws.com")) and getattr(
        s3.meta, "region_name", None
    ) not in ("us-east-1", "aws-global"):
        # botocore presigns virtual-hosted URLs on the legacy global endpoint, which buckets of
        # newer regions do not answer; its own requests go to the regional endpoint.
        reason = (
            f"presigned URLs would use the legacy global endpoint {host}; a client with "
            "s3={'addressing_style': 'virtual'} (bucket names without dots) or 'path' presigns "
            "regional URLs"
        )
    elif getattr(config, "proxies", None) or _environment_proxies():
        reason = "a proxy is configured"
    elif _intercepted(s3):
        reason = "a before-send hook (e.g. moto) intercepts the client's requests"
    else:
        return options
    logger.info("model copy: GETs go through the boto3 client: %s", reason)
    return None


def _environment_proxies() -> bool:
    import urllib.request  # lazy import

    return bool({"http", "https"} & set(urllib.request.getproxies()))


def _intercepted(s3: Any) -> bool:
    try:
        handlers = list(s3.meta.events._emitter._handlers.prefix_search("before-send.s3.GetObject"))
    except AttributeError:
        return True  # cannot tell: stay on the client
    return any(getattr(handler, "enabled", True) for handler in handlers)


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors of a connection or stream that another attempt on a new connection can fix."""
    import http.client  # lazy import

    from botocore.exceptions import (  # lazy import
        ConnectionError as BotoConnectionError,
    )
    from botocore.exceptions import (  # lazy import
        IncompleteReadError,
        ReadTimeoutError,
        ResponseStreamingError,
    )
    from urllib3.exceptions import HTTPError as Urllib3Error  # lazy import

    return (
        BotoConnectionError,
        ReadTimeoutError,
        IncompleteReadError,
        ResponseStreamingError,
        Urllib3Error,
        http.client.HTTPException,
        # Connection refused or reset, timeouts, DNS and TLS errors of the lean path.
        OSError,
    )


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


def _disk_error(task: _FileTask, error: OSError, total: int) -> str:
    if error.errno == errno.ENOSPC:
        return (
            f"{task.partial}: no space left on the device ({total} bytes needed for the model): "
            "use a bigger instance store or a smaller model"
        )
    return f"{task.partial}: {error.strerror or error}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
