"""The study report (``report.*``, ``study report``): settings here, the page in
:mod:`study.report.page` (imported only when a report is written: it brings Plotly and
Matplotlib)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReportConfig:
    #: Where the report goes (``<out_dir>/<study>/report.html`` with its PNGs and tables).
    out_dir: str = "reports"
    #: How many of the best trials the table and the learning curves show.
    top_k: int = 5
    #: The error one could hope for (e.g. a human-level error rate; 0: none known).
    target_error: float = 0.0
    #: Above this, bias or variance counts as high; empty: 0.05 error rate, else 10 % of val.
    tolerance: float | None = None
