"""The archive policy at work: plan, runner, the Parquet store, restore."""
