"""Pydantic response schemas built from the models (``from_attributes=True``), as in the seed.

``UserResponse`` deliberately has no ``password_hash`` field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from metrics_toolkit.errors import InvalidInterval
from metrics_toolkit.intervals import Interval


class UserResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    created_at: datetime
    last_login: datetime | None
    is_admin: bool = False


class MetricsSnapshotResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    timestamp: datetime
    metric_type: str
    metric_data: dict[str, Any]


class ConfigResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    value: Any
    updated_at: datetime


class ArchivePolicyResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    retention_days: int
    archive_enabled: bool
    downsample_after_days: int
    downsample_interval: str
    last_archive_run: datetime | None
    created_at: datetime
    updated_at: datetime

    @field_validator("downsample_interval")
    @classmethod
    def _interval_parses(cls, value: str) -> str:
        try:
            Interval.parse(value)
        except InvalidInterval as error:
            raise ValueError(str(error)) from None
        return value
