"""The analysis layer: what the report, the explorer and notebooks compute from frames.

Coverage and gaps (:mod:`.coverage`, :mod:`.gaps`), summaries and the one percentile
definition (:mod:`.summaries`), comparisons with a previous period (:mod:`.comparisons`)
and breach episodes (:mod:`.breaches`). Every number carries what it stands on.
"""
