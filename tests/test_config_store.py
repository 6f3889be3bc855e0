from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from metrics_toolkit.errors import ConfigError, UnknownConfigKey
from metrics_toolkit.store import config as config_store
from metrics_toolkit.store.config_keys import CONFIG_KEYS, KEYS


def test_defaults_set_get_list_delete(session: Session) -> None:
    assert config_store.get_config(session=session, key="collector.interval") == "10s"
    config_store.set_config(session=session, key="collector.interval", value="30s")
    config_store.set_config(session=session, key="collector.interval", value="1min")
    session.commit()
    assert config_store.get_config(session=session, key="collector.interval") == "1min"
    rows = {
        key: (value, is_set) for key, value, is_set, _ in config_store.list_config(session=session)
    }
    assert rows["collector.interval"] == ("1min", True)
    assert rows["archive.path"] == (KEYS["archive.path"].default, False)
    assert len(rows) == len(CONFIG_KEYS)
    assert config_store.delete_config(session=session, key="collector.interval") is True
    assert config_store.delete_config(session=session, key="collector.interval") is False
    assert config_store.get_config(session=session, key="collector.interval") == "10s"


def test_json_values_of_every_kind_round_trip(session: Session) -> None:
    value = {"cpu.usage_percent": 95.5, "memory.usage_percent": 80}
    config_store.set_config(session=session, key="report.thresholds", value=value)
    session.commit()
    session.expire_all()
    assert config_store.get_config(session=session, key="report.thresholds") == value


@pytest.mark.parametrize(
    ("key", "value", "error", "fragment"),
    [
        ("no.such.key", 1, UnknownConfigKey, "Known keys: "),
        ("retention", {"days": 3}, UnknownConfigKey, "policy set --retention-days"),
        ("collector.interval", "7min", ConfigError, "neither divides one day"),
        ("collector.batch_size", 0, ConfigError, "greater than 0"),
        ("collector.batch_size", True, ConfigError, "whole number"),
        ("collector.enabled", "cpu", ConfigError, "list of strings"),
        ("report.thresholds", {"cpu": "high"}, ConfigError, "object of numbers"),
    ],
)
def test_bad_keys_and_values_are_refused(
    session: Session, key: str, value: object, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as info:
        config_store.set_config(session=session, key=key, value=value)
    assert fragment in str(info.value)


def test_parse_value_explains_json() -> None:
    assert config_store.parse_value('"5min"') == "5min"
    assert config_store.parse_value("[1, 2]") == [1, 2]
    with pytest.raises(ConfigError, match="Quote strings"):
        config_store.parse_value("5min")


def test_every_default_passes_its_own_validator() -> None:
    for entry in CONFIG_KEYS:
        entry.validate(entry.default)
