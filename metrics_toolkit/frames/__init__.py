"""Frames: ``load_frame`` and its readers (database, Parquet archive, Dask)."""
