"""Re-run jobs started from the panel: run in the background, state kept in memory.

A re-run executes a whole notebook (papermill), far too long for one HTTP request:
``POST runs/{id}/rerun`` answers 202 with a job at once and the panel polls
``GET jobs/{id}``. While a job for a run is queued or running, asking again for the
same run gives back that job instead of starting a second one.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nbtrack.exceptions import NbtrackError

JobState = Literal["queued", "running", "finished", "failed"]


@dataclass
class RerunJob:
    """One background re-run of one run of one store."""

    job_id: str
    run_id: str
    store: str
    state: JobState = "queued"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    @property
    def active(self) -> bool:
        """True while the job is queued or running."""
        return self.state in ("queued", "running")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, as served by ``GET jobs/{id}``."""
        return {
            "job_id": self.job_id,
            "run_id": self.run_id,
            "state": self.state,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "result": self.result,
            "error": self.error,
        }


class RerunJobs:
    """The server's re-run jobs: a small thread pool and a table of jobs by id."""

    def __init__(self, max_workers: int = 2) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="nbtrack-rerun"
        )
        self._lock = threading.Lock()
        self._jobs: dict[str, RerunJob] = {}
        self._active: dict[tuple[Path, str], str] = {}

    def submit(self, store: Path, run_id: str, work: Callable[[], Any]) -> tuple[RerunJob, bool]:
        """Start ``work`` (re-running ``run_id`` of ``store``) in the background.

        Returns the job and whether it is new: while a job for the same run of the same
        store is queued or running, that job is returned and ``work`` is not started.
        """
        key = (store, run_id)
        with self._lock:
            existing_id = self._active.get(key)
            if existing_id is not None and self._jobs[existing_id].active:
                return self._jobs[existing_id], False
            job = RerunJob(job_id=uuid.uuid4().hex, run_id=run_id, store=str(store))
            self._jobs[job.job_id] = job
            self._active[key] = job.job_id
        self._executor.submit(self._execute, job, key, work)
        return job, True

    def active(self, store: Path, run_id: str) -> RerunJob | None:
        """The queued or running job for this run of this store, if any."""
        with self._lock:
            job_id = self._active.get((store, run_id))
            return self._jobs[job_id] if job_id is not None else None

    def get(self, job_id: str) -> RerunJob | None:
        """The job with this id, or ``None``."""
        with self._lock:
            return self._jobs.get(job_id)

    def shutdown(self) -> None:
        """Stop accepting jobs; running ones finish in their threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _execute(self, job: RerunJob, key: tuple[Path, str], work: Callable[[], Any]) -> None:
        job.state = "running"
        job.started_at = time.time()
        try:
            outcome = work()
            job.result = outcome.to_dict() if hasattr(outcome, "to_dict") else dict(outcome)
            job.state = "finished"
        except NbtrackError as exc:
            job.error = {"type": type(exc).__name__, "message": str(exc)}
            job.state = "failed"
        except Exception as exc:  # a job thread must always leave a readable state
            job.error = {"type": type(exc).__name__, "message": str(exc) or repr(exc)}
            job.state = "failed"
        finally:
            job.ended_at = time.time()
            with self._lock:
                if self._active.get(key) == job.job_id:
                    del self._active[key]
