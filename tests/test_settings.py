"""Settings: defaults, the TOML file, and one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bangfu_bot.cli import main
from bangfu_bot.notify.outbox import DeliveryRules
from bangfu_bot.settings import SettingsError, load_settings

REAL = {
    "BANGFU_WECHAT_APPID": "wx1234567890abcdef",
    "BANGFU_WECHAT_SECRET": "s",
    "BANGFU_WECHAT_TOKEN": "t",
}


def test_defaults_are_the_embedded_store_and_the_sandbox() -> None:
    settings = load_settings({})
    assert settings.database_url == "sqlite+aiosqlite:///storage/bangfu.db"
    assert settings.port == 8080 and settings.timezone == "Asia/Shanghai"
    assert settings.sandbox and settings.host == "127.0.0.1"
    assert settings.wechat_api_base == "https://api.weixin.qq.com"


def test_real_credentials_turn_the_sandbox_off() -> None:
    settings = load_settings({**REAL, "BANGFU_HOST": "0.0.0.0"})
    assert not settings.sandbox and settings.host == "0.0.0.0"


def test_forced_sandbox_with_credentials_listens_on_loopback_only() -> None:
    settings = load_settings({**REAL, "BANGFU_HOST": "0.0.0.0", "BANGFU_SANDBOX": "true"})
    assert settings.sandbox and settings.host == "127.0.0.1"


def test_postgres_urls_are_normalised_to_asyncpg() -> None:
    settings = load_settings({"BANGFU_DATABASE_URL": "postgresql://u:pw@db/bangfu"})
    assert settings.database_url == "postgresql+asyncpg://u:pw@db/bangfu"


def test_subscription_account_states_what_it_cannot_do() -> None:
    features = load_settings({"BANGFU_WECHAT_ACCOUNT_TYPE": "subscription"}).features()
    assert features["customer_service_messages"] and not features["template_messages"]
    assert not features["parametric_qr_codes"]


def test_toml_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "bangfu.toml"
    config.write_text('port = 9001\ntimezone = "Asia/Urumqi"\n', encoding="utf-8")
    settings = load_settings({"BANGFU_PORT": "9002"}, config_file=config)
    assert settings.port == 9002 and settings.timezone == "Asia/Urumqi"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"BANGFU_PORT": "eighty"}, "BANGFU_PORT"),
        ({"BANGFU_PORT": "70000"}, "BANGFU_PORT"),
        ({"BANGFU_TIMEZONE": "Mars/Olympus"}, "BANGFU_TIMEZONE"),
        ({"BANGFU_WECHAT_ACCOUNT_TYPE": "enterprise"}, "BANGFU_WECHAT_ACCOUNT_TYPE"),
        ({"BANGFU_WECHAT_AES_KEY": "short"}, "BANGFU_WECHAT_AES_KEY"),
        ({"BANGFU_DATABASE_URL": "mysql://root@localhost/x"}, "BANGFU_DATABASE_URL"),
        ({"BANGFU_MAX_CLOCK_SKEW_S": "-5"}, "BANGFU_MAX_CLOCK_SKEW_S"),
        ({"BANGFU_WECHAT_API_BASE": "ftp://x"}, "BANGFU_WECHAT_API_BASE"),
        ({**REAL, "BANGFU_WECHAT_TOKEN": ""}, "BANGFU_WECHAT_TOKEN"),
        ({"BANGFU_QUIET_HOURS": "21:00"}, "BANGFU_QUIET_HOURS"),
        ({"BANGFU_QUIET_HOURS": "08:00-08:00"}, "BANGFU_QUIET_HOURS"),
        ({"BANGFU_QUIET_HOURS": "8:00-08:00"}, "BANGFU_QUIET_HOURS"),
    ],
)
def test_bad_value_names_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(env)
    message = str(error.value)
    assert message.startswith(named) and "\n" not in message


@pytest.mark.parametrize(
    ("quiet_hours", "awake"),
    [
        ("21:00-08:00", ("08:00", "21:00")),  # crossing midnight
        ("12:00-14:00", ("14:00", "12:00")),  # within a day: awake from 14:00 to noon the next day
        (" 7:30-9:00 ", ("09:00", "07:30")),
    ],
)
def test_quiet_hours_either_way_round_midnight(quiet_hours: str, awake: tuple[str, str]) -> None:
    rules = DeliveryRules.from_settings(load_settings({"BANGFU_QUIET_HOURS": quiet_hours}))
    assert (f"{rules.quiet_start:%H:%M}", f"{rules.quiet_end:%H:%M}") == awake


def test_password_in_a_bad_database_url_is_not_echoed() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({"BANGFU_DATABASE_URL": "mysql://root:hunter2@db/x"})
    assert "hunter2" not in str(error.value)


def test_cli_exits_2_with_one_line_and_no_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bangfu_bot.cli", "config"],
        env={"BANGFU_PORT": "abc", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "bangfu-bot: configuration error: BANGFU_PORT: expected a whole number, got 'abc'"
    ]


def test_cli_bad_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = = 1\n", encoding="utf-8")
    assert main(["--config", str(config), "config"]) == 2
    assert "--config" in capsys.readouterr().err


def test_cli_config_hides_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in REAL.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BANGFU_WECHAT_SECRET", "very-secret-value")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "very-secret-value" not in out and "wechat_secret = ***" in out


def test_template_ids_per_kind_of_notice() -> None:
    conversations = str(Path(__file__).resolve().parents[1] / "conversations")
    settings = load_settings(
        {
            "BANGFU_WECHAT_APPID": "wx1",
            "BANGFU_WECHAT_SECRET": "s",
            "BANGFU_WECHAT_TOKEN": "t",
            "BANGFU_WECHAT_TEMPLATE_ID": "TM-old",
            "BANGFU_WECHAT_TEMPLATES": " reminder=TM-r , decision=TM-d,",
            "BANGFU_CONVERSATIONS_DIR": conversations,
        }
    )
    rules = DeliveryRules.from_settings(settings)
    assert dict(rules.template_ids) == {"reminder": "TM-r", "decision": "TM-d"}
    assert rules.template_id == "TM-old"  # the generic one
    for bad, named in (("reminder", "kind=TEMPLATE_ID"), ("a=1,a=2", "twice")):
        with pytest.raises(SettingsError) as error:
            load_settings({"BANGFU_WECHAT_TEMPLATES": bad})
        assert "BANGFU_WECHAT_TEMPLATES" in str(error.value) and named in str(error.value)
    unknown = load_settings(
        {"BANGFU_WECHAT_TEMPLATES": "loan=TM-x", "BANGFU_CONVERSATIONS_DIR": conversations}
    )
    with pytest.raises(SettingsError) as error:
        DeliveryRules.from_settings(unknown)
    assert "unknown kind 'loan'" in str(error.value)
