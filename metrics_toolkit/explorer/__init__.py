"""The explorer's logic, free of Streamlit so it can be unit-tested (issue 6).

``streamlit_app.py`` at the repository root is the only module importing Streamlit; it
lays out what these modules compute:

- :mod:`.connection`: open the database with one clear error;
- :mod:`.auth`: login checks with a growing delay and a lockout;
- :mod:`.query`: the sidebar's choices as one hashable :class:`ViewQuery`;
- :mod:`.view`: the buckets, gaps, rolled-up parts, p95 and summary of one view;
- :mod:`.coverage`, :mod:`.charts`, :mod:`.units`: what the charts and tables show;
- :mod:`.downloads`, :mod:`.raw`, :mod:`.admin`, :mod:`.report`: the other panels;
- :mod:`.launch`: how ``metrics-toolkit explore`` starts Streamlit;
- :mod:`.sandbox`: a throw-away copy for trying the archive policy (notebook 02).
"""

from __future__ import annotations

from metrics_toolkit.explorer.auth import LoginOutcome, LoginThrottle, attempt_login
from metrics_toolkit.explorer.connection import database_label, database_url, open_database
from metrics_toolkit.explorer.query import AGGREGATES, PRESETS, ViewQuery, resolve_range
from metrics_toolkit.explorer.units import format_value
from metrics_toolkit.explorer.view import View, build_view

__all__ = [
    "AGGREGATES",
    "PRESETS",
    "LoginOutcome",
    "LoginThrottle",
    "View",
    "ViewQuery",
    "attempt_login",
    "build_view",
    "database_label",
    "database_url",
    "format_value",
    "open_database",
    "resolve_range",
]
