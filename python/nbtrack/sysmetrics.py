"""System metrics of a run: CPU, memory, disk and NVIDIA GPUs, sampled in the background.

While a tracked cell runs, one daemon thread samples the kernel process and its
children every ``interval`` seconds and logs metric series under ``system/``:
``cpu_percent`` (100 = one core busy), ``rss_mb``, ``disk_read_mb`` /
``disk_write_mb`` (since the run started) and, per NVIDIA device,
``gpu<i>_utilization_percent`` / ``gpu<i>_memory_mb``. When the run ends it adds
one value each of ``peak_rss_mb``, ``rss_increase_mb`` (peak minus the memory at
the start), ``cpu_time_s``, ``cpu_percent_avg`` and ``gpu<i>_peak_memory_mb``.

Peak memory does not depend on catching the peak in a sample: on Linux the
kernel's high-water mark (``VmHWM``) is reset when the run starts (writing ``5``
to ``/proc/self/clear_refs``) and read when it ends. GPUs are read through NVIDIA's
management library (``pynvml``, from the ``nvidia-ml-py`` package), imported only
when installed; without it or without a driver, no GPU metric is logged.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psutil

    from .tracking import RunWriter

PREFIX = "system/"
MB = 1024 * 1024
THREAD_NAME = "nbtrack-system"
START_AFTER = 1.0  # seconds into a run at most before its sampler's thread starts


def interval_from(configured: float | None) -> float:
    """The sampling interval: the magic's setting, else the environment's, else 2 s
    (settings.py; well under 0.5 % of a core, benchmarks/bench_monitoring.py).

    0 (or less) turns sampling off.
    """
    if configured is not None:
        return float(configured)
    from . import settings

    return settings.system_interval()


def _high_water_mark() -> float | None:
    """This process's peak resident memory since the last reset, in bytes (Linux)."""
    status = _proc_file("status", 1 << 14)
    at = status.find(b"\nVmHWM:") if status is not None else -1
    if status is None or at < 0:
        return None
    return float(status[at + 7 :].split(None, 2)[0]) * 1024


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _proc_file(name: str, size: int = 4096) -> bytes | None:
    """``/proc/self/<name>`` in one read (Linux), or None where there is none."""
    try:
        fd = os.open(f"/proc/self/{name}", os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def _reset_high_water_mark() -> bool:
    try:
        fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
    except OSError:
        return False
    try:
        return os.write(fd, b"5") == 1
    except OSError:
        return False
    finally:
        os.close(fd)


def _has_children() -> bool:
    """Whether this process has a child process now, running or not yet reaped.

    One ``waitid`` that neither blocks nor reaps (``WNOHANG | WNOWAIT``): it fails with
    ``ECHILD`` only when the process (any of its threads) has no child at all. A
    kernel usually has none, so a run's first and last samples skip reading the
    process tree (~0.3 ms, one file per thread) in the common case.
    """
    waitid = getattr(os, "waitid", None)
    if waitid is None:
        return True  # cannot tell: read the tree
    try:
        waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    except OSError:
        return True
    return True


def _descendants(pid: int) -> list[int] | None:
    """The process tree under ``pid`` from each thread's ``children`` file (Linux), or None.

    psutil's ``children()`` reads the status of every process on the machine (some
    ms on a shared host, twice per run); this reads one small file per thread of the
    processes in the tree. None where the kernel does not offer the file.
    """
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tids = os.listdir(f"/proc/{parent}/task")
        except OSError:
            if parent == pid:
                return None
            continue  # a child that ended meanwhile
        for tid in tids:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", "rb") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except FileNotFoundError:
                if parent == pid and tid == str(pid):
                    return None  # the kernel lacks CONFIG_PROC_CHILDREN
                continue  # a thread that ended meanwhile
            except OSError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


class _Gpus:
    """NVIDIA devices through pynvml, when the package and a driver are both there."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handles = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
        except Exception:  # no package, no driver, no device: no GPU metrics
            self.handles = []

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for i, h in enumerate(self.handles):
            try:
                util = self.nvml.nvmlDeviceGetUtilizationRates(h)
                mem = self.nvml.nvmlDeviceGetMemoryInfo(h)
            except Exception:
                continue
            out[f"gpu{i}_utilization_percent"] = float(util.gpu)
            out[f"gpu{i}_memory_mb"] = mem.used / MB
        return out


_gpus: _Gpus | None = None
_process: psutil.Process | None = None


def _psutil() -> Any:
    """psutil, imported when first needed (~20 ms): on Linux a kernel with no child
    process reads its own figures from /proc and never needs it."""
    import psutil

    return psutil


def _own_process() -> psutil.Process:
    """This process, one ``psutil.Process`` per pid (making one reads /proc each time)."""
    global _process
    if _process is None or _process.pid != os.getpid():
        _process = _psutil().Process()
    return _process


class SystemSampler:
    """Samples one run's process tree until ``stop``; see the module docstring."""

    def __init__(self, writer: RunWriter, interval: float) -> None:
        global _gpus
        self.writer = writer
        self.interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._step = 0
        self._children: dict[int, psutil.Process] = {}
        self._closed = False  # the last sample is taken: the thread logs no more
        self.peak_children = 0.0
        if _gpus is None:
            _gpus = _Gpus()
        self.gpus = _gpus
        self.hwm_reset = _reset_high_water_mark()
        self.t0 = self._last_t = time.monotonic()
        self.cpu0 = self._last_cpu = self._cpu()
        self.io0 = self._io()
        self.rss0 = self._rss()
        self.peak_rss = self.rss0
        self.peak_gpu: dict[str, float] = {}
        self._held: dict[str, float] = {}  # a short run's only sample, logged with its totals
        self.thread: threading.Thread | None = None
        # Made and started by nbtrack's helper thread (``Thread.start`` waits until the
        # new thread runs, a few ms on a busy machine that the cell would otherwise wait),
        # half an interval (at most START_AFTER) into the run: a cell that ends sooner
        # never has one, and one that runs on meets no new thread in its first moments
        # (its first sample is due at ``t0 + interval`` all the same, see ``_loop``).
        from .ingest import background

        self._starting = background(self._start_thread)

    @property
    def proc(self) -> psutil.Process:
        return _own_process()

    # ---------------------------------------------------------------- reading the process tree
    def _kids(self) -> list[psutil.Process]:
        if not _has_children():  # no child, so no descendant (an orphan is init's)
            self._children = {}
            return []
        pids = _descendants(os.getpid())
        if pids is None:  # no /proc/<pid>/task/<tid>/children here: psutil scans every process
            try:
                live = {p.pid: p for p in self.proc.children(recursive=True)}
            except _psutil().Error:
                return list(self._children.values())
        else:
            live = {}
            for pid in pids:
                known = self._children.get(pid)
                if known is None:
                    with contextlib.suppress(_psutil().Error):
                        known = _psutil().Process(pid)
                if known is not None:
                    live[pid] = known
        # The same Process objects across samples: psutil then knows each one's start.
        self._children = {pid: self._children.get(pid, p) for pid, p in live.items()}
        return list(self._children.values())

    def _cpu(self) -> float:
        # This process's threads to the nanosecond, plus the children it has reaped.
        t = os.times()
        total = time.process_time() + t.children_user + t.children_system
        for child in self._kids():
            with contextlib.suppress(_psutil().Error):
                c = child.cpu_times()
                total += c.user + c.system
        return total

    def _rss(self) -> float:
        """Resident memory of the kernel plus its children (the children's part kept apart)."""
        kids = 0.0
        for child in self._children.values():
            with contextlib.suppress(_psutil().Error):
                kids += child.memory_info().rss
        self.peak_children = max(self.peak_children, kids)
        own = _proc_file("statm")
        if own is None:
            return float(self.proc.memory_info().rss) + kids
        return float(int(own.split()[1]) * _PAGE) + kids

    def _io(self) -> tuple[float, float]:
        read = write = 0.0
        own = _proc_file("io")
        if own is not None:  # the same fields psutil reads, without its objects
            fields = dict(line.split(b":", 1) for line in own.splitlines() if b":" in line)
            read, write = float(fields[b"read_bytes"]), float(fields[b"write_bytes"])
        for p in [*([] if own is not None else [self.proc]), *self._children.values()]:
            with contextlib.suppress(_psutil().Error, AttributeError):
                io = p.io_counters()
                read += io.read_bytes
                write += io.write_bytes
        return read, write

    # ---------------------------------------------------------------- sampling
    def _sample(self, final: bool = False) -> None:
        with self._lock:
            if self._closed and not final:
                return  # the run ended while this sample waited for the lock
            now, cpu = time.monotonic(), self._cpu()
            rss = self._rss()
            read, write = self._io()
            self.peak_rss = max(self.peak_rss, rss)
            wall = now - self._last_t
            values = {
                "cpu_percent": 100.0 * (cpu - self._last_cpu) / wall if wall > 0 else 0.0,
                "rss_mb": rss / MB,
                "disk_read_mb": max(0.0, read - self.io0[0]) / MB,
                "disk_write_mb": max(0.0, write - self.io0[1]) / MB,
            }
            for key, v in self.gpus.sample().items():
                values[key] = v
                if key.endswith("_memory_mb"):
                    self.peak_gpu[key] = max(self.peak_gpu.get(key, 0.0), v)
            self._last_t, self._last_cpu = now, cpu
            step = self._step
            self._step += 1
            self._closed = self._closed or final
            if final and step == 0:  # a short run: logged with its totals, in one call
                self._held = values
                return
            # One call: the series' names go to the spool in one record, not one each.
            self.writer.log_metrics({PREFIX + key: v for key, v in values.items()}, step)

    def _start_thread(self) -> None:
        if not self._stop.wait(min(self.interval / 2, START_AFTER)):
            self.thread = threading.Thread(target=self._loop, name=THREAD_NAME, daemon=True)
            self.thread.start()

    def _loop(self) -> None:
        wait = self.t0 + self.interval - time.monotonic()  # due as if started with the run
        while not self._stop.wait(max(0.0, wait)) and not self._closed:
            with contextlib.suppress(Exception):  # a vanished child, a closed spool: next time
                self._sample()
            wait = self.interval

    def stop(self, later: Callable[[Callable[[], None]], None] | None = None) -> None:
        """End sampling and log the run's peaks and totals.

        The thread is told to end but not waited for here: it is joined when the next
        cell starts (``reap``), by when it has long exited, so the cell's end does not
        wait for it to be scheduled. The last sample is taken here, and a sample the
        thread was about to log after it is dropped (``_closed``). ``later`` runs the
        wake-up of the thread (``later(fn)``) once the cell has replied: a thread woken
        now would take the GIL from the reply; asleep, it ends at its next tick anyway.
        """
        (later or _now)(self._stop.set)
        if not self._starting.cancel():  # started, or starting: joined by the next cell
            _ending.append(self)
        with contextlib.suppress(Exception):
            self._sample(final=True)
        self._closed = True
        wall = time.monotonic() - self.t0
        cpu = self._last_cpu - self.cpu0
        peak = self.peak_rss
        hwm = _high_water_mark() if self.hwm_reset else None
        if hwm is not None:
            # The kernel's exact peak, plus its children's largest sampled memory.
            peak = max(peak, hwm + self.peak_children)
        totals = {
            "peak_rss_mb": peak / MB,
            "rss_increase_mb": max(0.0, peak - self.rss0) / MB,
            "cpu_time_s": cpu,
            "cpu_percent_avg": 100.0 * cpu / wall if wall > 0 else 0.0,
        }
        for key, v in self.peak_gpu.items():
            totals[key.replace("_memory_mb", "_peak_memory_mb")] = v
        # Every series at step 0 when the run had no sample before the last; one spool
        # record, so a short run makes no point log.
        self.writer.log_metrics_once({PREFIX + k: v for k, v in {**self._held, **totals}.items()})


_ending: list[SystemSampler] = []  # stopped samplers whose thread is not joined yet


def reap() -> None:
    """Join the threads of the samplers that stopped (called as the next cell starts)."""
    while _ending:
        sampler = _ending.pop()
        sampler._stop.set()  # if the wake-up after the reply did not come (no event loop)
        with contextlib.suppress(Exception):
            sampler._starting.result(timeout=10)
        if sampler.thread is not None and sampler.thread.ident is not None:
            sampler.thread.join(timeout=10)


def start(writer: RunWriter, interval: float | None) -> SystemSampler | None:
    """Start sampling for ``writer``'s run (None when the interval turns it off)."""
    reap()
    seconds = interval_from(interval)
    if seconds <= 0:
        return None
    try:
        return SystemSampler(writer, seconds)
    except (OSError, _psutil().Error):
        return None


def stop(
    sampler: SystemSampler | None, later: Callable[[Callable[[], None]], None] | None = None
) -> None:
    if sampler is not None:
        sampler.stop(later)


def _now(fn: Callable[[], None]) -> None:
    fn()


def system_summary(metrics: dict[str, float]) -> str | None:
    """``peak memory 1.4 GB (+512 MB), CPU 3.1 s (97 %)`` from a run's metrics."""
    peak = metrics.get(PREFIX + "peak_rss_mb")
    if peak is None:
        return None
    parts = [f"peak memory {_mb(peak)}"]
    rise = metrics.get(PREFIX + "rss_increase_mb")
    if rise is not None and rise >= 1:
        parts[0] += f" (+{_mb(rise)})"
    cpu, pct = metrics.get(PREFIX + "cpu_time_s"), metrics.get(PREFIX + "cpu_percent_avg")
    if cpu is not None:
        parts.append(f"CPU {cpu:.2f} s" + (f" ({pct:.0f} %)" if pct is not None else ""))
    gpus = sorted(k for k in metrics if k.startswith(PREFIX + "gpu") and "peak_memory" in k)
    for key in gpus:
        parts.append(f"{key[len(PREFIX) :].split('_')[0].upper()} memory {_mb(metrics[key])}")
    return ", ".join(parts)


def _mb(value: float) -> str:
    return f"{value / 1024:.2f} GB" if value >= 1024 else f"{value:.0f} MB"


def is_system(key: str) -> bool:
    return key.startswith(PREFIX)
