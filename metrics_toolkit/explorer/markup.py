"""Strings from the data (host names, metric paths) shown safely in Streamlit markdown."""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$&:])")


def escape_markdown(text: str) -> str:
    """``text`` with every markdown (and HTML) special character backslash-escaped.

    Streamlit already refuses raw HTML in markdown; this also keeps a host named
    ``**x**`` or ``[a](b)`` from turning into formatting or a link.
    """
    return _SPECIAL.sub(r"\\\1", text)
