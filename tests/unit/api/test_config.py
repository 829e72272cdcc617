"""Server configuration: defaults with nothing set, a TOML file, SIGNALPOST_* variables over the
file, and every bad value refused with ConfigError naming it."""

from __future__ import annotations

import pytest

from api.config import ConfigError, ServerConfig, load_config
from engine.config import CompactionConfig, EngineConfig

FULL = """
data_dir = "/srv/signalpost"
host = "0.0.0.0"
port = 9100
workers = 4
max_body_bytes = 2097152
log_level = "info"
benchmark_endpoints = true
trusted_proxies = ["10.0.0.0/8", "192.168.1.1"]

[engine]
durability = "relaxed"
max_size_bytes = 1073741824
max_group_ops = 128
group_wait_us = 0
dedup_window_seconds = 3600
max_future_seconds = 7200
max_properties_bytes = 1024
max_batch_events = 50

[engine.compaction]
fanout = 4
target_rows = 1000
max_step_rows = 500
enabled = false
"""


def _write(tmp_path, text: str):
    path = tmp_path / "signalpost.toml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_environment():
    config = load_config(env={})
    assert config == ServerConfig()
    assert config.data_dir == "./signalpost-data"
    assert (config.host, config.port, config.workers) == ("127.0.0.1", 8000, 1)
    assert config.max_body_bytes == 1024 * 1024
    assert config.benchmark_endpoints is False
    assert config.trusted_proxies == []
    engine = config.engine
    assert engine == EngineConfig()
    assert engine.durability == "durable"
    # The documents' numbers are the defaults.
    assert engine.max_batch_events == 500
    assert engine.max_properties_bytes == 32 * 1024
    assert engine.max_future_seconds == 24 * 3600


def test_every_setting_of_the_documented_file_is_read(tmp_path):
    config = load_config(_write(tmp_path, FULL), env={})
    assert config == ServerConfig(
        data_dir="/srv/signalpost",
        host="0.0.0.0",
        port=9100,
        workers=4,
        max_body_bytes=2 * 1024 * 1024,
        benchmark_endpoints=True,
        log_level="info",
        trusted_proxies=["10.0.0.0/8", "192.168.1.1"],
        engine=EngineConfig(
            max_size_bytes=1 << 30,
            durability="relaxed",
            max_group_ops=128,
            group_wait_us=0,
            dedup_window_seconds=3600,
            max_future_seconds=7200,
            max_properties_bytes=1024,
            max_batch_events=50,
            compaction=CompactionConfig(
                fanout=4, target_rows=1000, max_step_rows=500, enabled=False
            ),
        ),
    )


def test_a_partial_file_keeps_the_other_defaults(tmp_path):
    config = load_config(_write(tmp_path, "port = 9001\n[engine]\nmax_batch_events = 10\n"), env={})
    assert config.port == 9001
    assert config.host == "127.0.0.1"
    assert config.engine.max_batch_events == 10
    assert config.engine.durability == "durable"
    assert config.engine.compaction == CompactionConfig()


def test_environment_wins_over_the_file(tmp_path):
    path = _write(tmp_path, FULL)
    env = {
        "SIGNALPOST_DATA": "/data/from-env",
        "SIGNALPOST_HOST": "::1",
        "SIGNALPOST_PORT": "8123",
        "SIGNALPOST_WORKERS": "2",
        "SIGNALPOST_BENCHMARK_ENDPOINTS": "false",
        "SIGNALPOST_LOG_LEVEL": "debug",
        "SIGNALPOST_DURABILITY": "durable",
        "SIGNALPOST_MAX_SIZE_BYTES": "4096000",
        "SIGNALPOST_GROUP_WAIT_US": "250",
    }
    config = load_config(path, env=env)
    assert config.data_dir == "/data/from-env"
    assert (config.host, config.port, config.workers) == ("::1", 8123, 2)
    assert config.benchmark_endpoints is False
    assert config.log_level == "debug"
    assert config.engine.durability == "durable"
    assert config.engine.max_size_bytes == 4096000
    assert config.engine.group_wait_us == 250
    # What the environment does not set still comes from the file.
    assert config.max_body_bytes == 2 * 1024 * 1024
    assert config.engine.max_batch_events == 50
    assert config.engine.compaction.fanout == 4


def test_environment_alone_without_a_file():
    config = load_config(env={"SIGNALPOST_DURABILITY": "relaxed", "SIGNALPOST_PORT": " 9000 "})
    assert config.engine.durability == "relaxed"
    assert config.port == 9000
    assert config.engine.max_batch_events == 500


def test_empty_variables_are_ignored(tmp_path):
    config = load_config(
        _write(tmp_path, "port = 9001\n"),
        env={"SIGNALPOST_PORT": "", "SIGNALPOST_DATA": "", "SIGNALPOST_CONFIG": ""},
    )
    assert config.port == 9001
    assert config.data_dir == "./signalpost-data"


def test_signalpost_config_names_the_file(tmp_path):
    path = _write(tmp_path, "workers = 3\n")
    assert load_config(env={"SIGNALPOST_CONFIG": str(path)}).workers == 3
    # An explicit path wins over the variable.
    other = tmp_path / "other.toml"
    other.write_text("workers = 5\n")
    assert load_config(other, env={"SIGNALPOST_CONFIG": str(path)}).workers == 5


def test_the_process_environment_is_read_when_none_is_given(monkeypatch):
    for name in ("SIGNALPOST_CONFIG", "SIGNALPOST_DATA", "SIGNALPOST_HOST", "SIGNALPOST_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SIGNALPOST_PORT", "8765")
    assert load_config().port == 8765


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on", " On "])
def test_true_booleans(value):
    assert load_config(env={"SIGNALPOST_BENCHMARK_ENDPOINTS": value}).benchmark_endpoints is True


@pytest.mark.parametrize("value", ["0", "false", "no", "off"])
def test_false_booleans(value):
    env = {"SIGNALPOST_BENCHMARK_ENDPOINTS": value}
    assert load_config(env=env).benchmark_endpoints is False


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("port = 'eighty'\n", "port"),
        ("workers = 1.5\n", "workers"),
        ("unknown_setting = 1\n", "unknown_setting"),
        ("[engine]\ndurability = 'sometimes'\n", "durability"),
        ("[engine]\nmax_batch_event = 10\n", "max_batch_event"),
        ("[engine.compaction]\nenabled = 'yes'\n", "enabled"),
        ("[engine.compaction]\nfan_out = 2\n", "fan_out"),
        ("engine = 5\n", "engine"),
        ("trusted_proxies = '10.0.0.0/8'\n", "trusted_proxies"),
    ],
)
def test_bad_values_in_the_file_are_refused_by_name(tmp_path, text, needle):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text), env={})
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIGNALPOST_PORT", "eighty"),
        ("SIGNALPOST_PORT", "80.5"),
        ("SIGNALPOST_WORKERS", "two"),
        ("SIGNALPOST_MAX_SIZE_BYTES", "1TB"),
        ("SIGNALPOST_GROUP_WAIT_US", "fast"),
    ],
)
def test_bad_numbers_in_the_environment_are_refused_by_name(name, value):
    with pytest.raises(ConfigError) as info:
        load_config(env={name: value})
    assert name in str(info.value)


def test_a_bad_durability_in_the_environment_is_refused():
    with pytest.raises(ConfigError) as info:
        load_config(env={"SIGNALPOST_DURABILITY": "sometimes"})
    assert "durability" in str(info.value)


def test_missing_or_broken_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.toml", env={})
    assert "absent.toml" in str(info.value)
    with pytest.raises(ConfigError):
        load_config(_write(tmp_path, "port = \n"), env={})
    with pytest.raises(ConfigError):
        load_config(_write(tmp_path, "[engine\n"), env={})
    with pytest.raises(ConfigError):
        load_config(env={"SIGNALPOST_CONFIG": str(tmp_path / "absent.toml")})
    with pytest.raises(ConfigError):
        load_config(tmp_path, env={})  # a directory


@pytest.mark.parametrize("value", ["ture", "enabled", "2"])
def test_a_bad_boolean_in_the_environment_is_refused(value):
    with pytest.raises(ConfigError):
        load_config(env={"SIGNALPOST_BENCHMARK_ENDPOINTS": value})


@pytest.mark.parametrize(
    "text", ["port = 70000\n", "port = -1\n", "workers = 0\n", "max_body_bytes = -1\n"]
)
def test_out_of_range_numbers_are_refused(tmp_path, text):
    with pytest.raises(ConfigError):
        load_config(_write(tmp_path, text), env={})


def test_webhook_settings_from_the_file_and_the_environment(tmp_path):
    text = (
        "[engine.webhooks]\nallow_private = true\nretry_schedule = [0, 1, 10]\n"
        "timeout_seconds = 3\nslack_default_url = 'https://hooks.slack.com/x'\n"
    )
    config = load_config(_write(tmp_path, text), env={})
    hooks = config.engine.webhooks
    assert hooks.allow_private is True and hooks.allow_http is False
    assert hooks.retry_schedule == (0, 1, 10) and hooks.timeout_seconds == 3
    assert hooks.slack_default_url == "https://hooks.slack.com/x"
    env = {
        "SIGNALPOST_WEBHOOKS_ALLOW_HTTP": "yes",
        "SIGNALPOST_WEBHOOKS_RETRY_SCHEDULE": "0, 0.5,2",
        "SIGNALPOST_WEBHOOKS_CA_BUNDLE": "/etc/ca.pem",
        "SIGNALPOST_WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT": "4",
        "SIGNALPOST_DURABILITY": "relaxed",
    }
    hooks = load_config(_write(tmp_path, text), env=env).engine.webhooks
    assert hooks.allow_http is True and hooks.allow_private is True  # the file's stays
    assert hooks.retry_schedule == (0, 0.5, 2) and hooks.ca_bundle == "/etc/ca.pem"
    assert hooks.max_in_flight_per_endpoint == 4


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIGNALPOST_WEBHOOKS_RETRY_SCHEDULE", "0,soon"),
        ("SIGNALPOST_WEBHOOKS_RETRY_SCHEDULE", "5,1"),
        ("SIGNALPOST_WEBHOOKS_TIMEOUT_SECONDS", "0"),
        ("SIGNALPOST_WEBHOOKS_ALLOW_PRIVATE", "maybe"),
    ],
)
def test_bad_webhook_settings_are_refused(name, value):
    with pytest.raises(ConfigError):
        load_config(env={name: value})


def test_workers_are_pinned_unless_turned_off(tmp_path):
    assert load_config(env={}).pin_workers is True
    assert load_config(env={"SIGNALPOST_PIN_WORKERS": "off"}).pin_workers is False
    (tmp_path / "c.toml").write_text("pin_workers = false\n")
    assert load_config(tmp_path / "c.toml", env={}).pin_workers is False
    (tmp_path / "bad.toml").write_text('pin_workers = "x"\n')
    with pytest.raises(ConfigError, match="pin_workers"):
        load_config(tmp_path / "bad.toml", env={})
