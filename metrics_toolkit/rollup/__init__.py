"""The one rollup rule: bucket start, per-leaf statistics, the merge law, and its SQL."""
