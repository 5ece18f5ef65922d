"""A launched worker never outlives its launcher, however the launcher dies.

``study-launch`` passes its process id (``STUDY_LAUNCHER_PID``). The worker asks the kernel for
SIGTERM when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``): a warm stop, so its trial is
checkpointed and re-queued. If the launcher died before the request took effect, the worker's
parent is no longer the launcher and it exits at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_launcher() -> None:
    launcher = os.environ.get("STUDY_LAUNCHER_PID")
    if not launcher or not sys.platform.startswith("linux"):
        return  # started by hand, or where the kernel offers no such request
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(launcher):
        sys.exit("the launcher is gone; not starting")
