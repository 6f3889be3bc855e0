"""Storage: engines, models, migrations, config, users, the policy row, bulk ingest."""
