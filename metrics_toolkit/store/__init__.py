"""Storage: engines, models, migrations, config, users, the policy row, bulk ingest."""

# Registers the session listener that keeps the series catalog for ORM writes of snapshots
# (wherever the models are imported, the listener is in place).
from metrics_toolkit.store import series as _series  # noqa: F401
