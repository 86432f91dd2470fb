"""Configuration: precedence, validation, and one clear line per mistake."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgsync.config import DEFAULT_QPS, FLAG_ONLY_KEYS, AccountSettings, load_settings
from imgsync.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_named_by_environment_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(None, environ={"IMGSYNC_CONFIG": str(tmp_path / "absent.toml")})


def test_missing_default_file_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nothing-here"))
    settings = load_settings(None, environ={})
    assert settings.account.base_url == "https://open-api.123pan.com"
    assert settings.upload.allow_private_urls is False
    assert settings.upload.filename == "{md5}{ext}"
    assert dict(settings.network.qps) == dict(DEFAULT_QPS)


def test_file_values_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[account]
base_url = "http://127.0.0.1:9"
client_id = "id"
client_secret = "s3cret"

[network]
read_timeout = 5
qps = { create = 0, list = 10 }

[upload]
folder = "notes/{year}"
link = "userSelfURL"
hosted_prefixes = ["https://img.example.com/"]
allow_private_urls = true
""",
    )
    settings = load_settings(path, environ={"IMGSYNC_DATA_DIR": str(tmp_path / "data")})
    assert settings.account.client_id == "id"
    assert settings.network.read_timeout == 5.0
    assert settings.network.qps["create"] == 0
    assert settings.network.qps["list"] == 10
    assert settings.network.qps["detail"] == DEFAULT_QPS["detail"]
    assert settings.upload.link == "userSelfURL"
    assert settings.upload.hosted_prefixes == ("https://img.example.com/",)
    assert settings.upload.allow_private_urls is True
    assert settings.data_dir == tmp_path / "data"
    assert settings.config_path == path


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[account]\nbase_url = "http://file.example"\nclient_id = "file"\n')
    env = {"IMGSYNC_BASE_URL": "http://env.example", "IMGSYNC_CLIENT_ID": "env"}
    settings = load_settings(path, environ=env)
    assert settings.account.base_url == "http://env.example"
    assert settings.account.client_id == "env"
    flagged = load_settings(
        path, environ=env, overrides={"account": {"base_url": "http://flag.example"}}
    )
    assert flagged.account.base_url == "http://flag.example"
    assert flagged.account.client_id == "env"


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[account]\nclient_id = "from-env-path"\n')
    settings = load_settings(None, environ={"IMGSYNC_CONFIG": str(path)})
    assert settings.account.client_id == "from-env-path"


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), environ={})
    with pytest.raises(AttributeError):
        settings.account.client_id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.network.qps["create"] = 99  # type: ignore[index]


def test_the_defaults_whose_check_loads_rules_are_valid() -> None:
    # The templates and the link format are checked only when set (a file, an environment
    # variable, a flag): the checks load the naming and link rules, which a no-op sync never
    # needs. So the defaults must be valid as they are.
    from imgsync.config import UploadSettings
    from imgsync.links import validate_format
    from imgsync.naming import validate_template

    defaults = UploadSettings()
    for key, kind in (("folder", "folder"), ("remote_folder", "folder"), ("filename", "filename")):
        validate_template(getattr(defaults, key), kind=kind)
    validate_format(defaults.format)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[account\nclient_id = 1", "invalid TOML"),
        ("[account]\nclient_id = 5\n", "account.client_id must be a string"),
        ("[account]\nclinet_id = 'x'\n", "unknown key account.clinet_id"),
        ("[acount]\nclient_id = 'x'\n", "unknown section [acount]"),
        ("account = 3\n", "account must be a table"),
        ("[network]\nmax_attempts = 'many'\n", "network.max_attempts must be a whole number"),
        ("[network]\nmax_attempts = true\n", "network.max_attempts must be a whole number"),
        ("[network]\nmax_attempts = 0\n", "network.max_attempts must be greater than 0"),
        ("[network]\nqps = { creat = 1 }\n", "unknown key network.qps.creat"),
        ("[network]\nqps = { create = -1 }\n", "network.qps.create must be a number"),
        ("[upload]\nlink = 'url'\n", "upload.link must be one of downloadURL, userSelfURL"),
        ("[upload]\nhosted_prefixes = 'x'\n", "upload.hosted_prefixes must be a list of strings"),
        ("[account]\nbase_url = 'ftp://x'\n", "account.base_url must start with http"),
        ("[upload]\nfilename = '{nope}'\n", "upload.filename"),
        ("[upload]\nfolder = '{nope}'\n", "upload.folder"),
        ("[upload]\nremote_folder = 'x/{md5}'\n", "upload.remote_folder"),
        ("[upload]\nformat = '$nope'\n", "upload.format"),
        ("[upload]\nallow_private_urls = 'yes'\n", "upload.allow_private_urls must be true or"),
        ("[sync]\nremote = 'drop'\n", "sync.remote must be one of migrate, keep, not 'drop'"),
        ("[cache]\nverify_after = 7\n", "cache.verify_after must be a string"),
        ("[cache]\nverify_after = '7 weeks'\n", "cache.verify_after must be a duration"),
        ("[cache]\nverify_after = '-1d'\n", "cache.verify_after must be a duration"),
        ("[cache]\nverify_after = 'd'\n", "cache.verify_after must be a duration"),
        ("[cache]\nskip_index = true\n", "unknown key cache.skip_index"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert needle in message
    assert str(path) in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[upload]\nconcurency = 8\n",
            "unknown key upload.concurency; did you mean upload.concurrency?",
        ),
        (
            "[account]\nclientid = 'x'\n",
            "unknown key account.clientid; did you mean account.client_id?",
        ),
        ("[uplaod]\nfolder = 'x'\n", "unknown section [uplaod]; did you mean [upload]?"),
        (
            "[upload]\nconnect_timeout = 3\n",
            "unknown key upload.connect_timeout;"
            " did you mean network.connect_timeout (in [network])?",
        ),
        (
            "base_url = 'http://h'\n",
            "base_url belongs in [account] (account.base_url), not at the top",
        ),
        (
            "[network]\nqps = { creat = 1 }\n",
            "unknown key network.qps.creat; did you mean network.qps.create?",
        ),
        (
            "[sync]\nremote = 'keeep'\n",
            "sync.remote must be one of migrate, keep, not 'keeep'; did you mean keep?",
        ),
        ("[upload]\nwhatever = 1\n", "unknown key upload.whatever"),
    ],
)
def test_a_misspelt_key_gets_a_suggestion(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(info.value) == f"{path}: {message}"


def test_retry_failed_is_a_flag_for_one_run_not_a_config_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[sync]\nretry_failed = true\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(info.value) == (
        f"{path}: sync.retry_failed is not a config key: give --retry-failed on the command line, "
        "for the run that needs it"
    )
    flagged = load_settings(
        write(tmp_path, "[sync]\nremote = 'keep'\n"),
        environ={},
        overrides={"sync": {"retry_failed": True}},
    )
    assert (flagged.sync.remote, flagged.sync.retry_failed) == ("keep", True)
    assert load_settings(write(tmp_path, ""), environ={}).sync.remote == "migrate"


posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@posix_only
@pytest.mark.parametrize(
    ("mode", "text", "warned"),
    [
        (0o644, "[account]\nclient_secret = 's'\n", True),
        (0o640, "[account]\naccess_token = 't'\n", True),
        (0o600, "[account]\nclient_secret = 's'\n", False),
        (0o644, "[upload]\nfolder = 'x'\n", False),  # no secret in it: nothing to protect
    ],
)
def test_a_config_file_others_can_read_is_used_with_a_warning(
    tmp_path: Path, mode: int, text: str, warned: bool
) -> None:
    path = write(tmp_path, text)
    path.chmod(mode)
    settings = load_settings(path, environ={})
    if not warned:
        assert settings.warnings == ()
        return
    (warning,) = settings.warnings
    held = "account.client_secret" if "secret" in text else "account.access_token"
    assert warning == (
        f"{path} holds {held} and other users of this machine can read it: run chmod 600 {path}"
    )


def test_secret_of_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "[account]\nclient_secret = 123456789\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert "123456789" not in str(info.value)
    assert "account.client_secret" in str(info.value)


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_not_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"[account]\nclient_id = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(path, environ={})


def test_env_override_wrong_base_url_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="IMGSYNC_BASE_URL"):
        load_settings(write(tmp_path, ""), environ={"IMGSYNC_BASE_URL": "nonsense"})


@pytest.mark.parametrize(
    ("account", "needle"),
    [
        ("", "account.client_id and account.client_secret"),
        ("client_id = 'a'", "account.client_secret not set"),
        ("client_secret = 'b'", "account.client_id not set"),
    ],
)
def test_require_credentials(tmp_path: Path, account: str, needle: str) -> None:
    path = write(tmp_path, f"[account]\n{account}\n")
    settings = load_settings(path, environ={})
    with pytest.raises(ConfigError) as info:
        settings.require_credentials()
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_credentials_from_token_or_pair_suffice(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    load_settings(path, environ={"IMGSYNC_ACCESS_TOKEN": "tok"}).require_credentials()
    load_settings(
        path, environ={"IMGSYNC_CLIENT_ID": "a", "IMGSYNC_CLIENT_SECRET": "b"}
    ).require_credentials()


def test_example_config_is_valid_and_complete() -> None:
    """config.example.toml documents every key, and loads as it stands."""
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    settings = load_settings(example, environ={})
    text = example.read_text(encoding="utf-8")
    for section in ("account", "network", "upload", "sync", "cache"):
        for name in getattr(settings, section).__dataclass_fields__:
            if f"{section}.{name}" in FLAG_ONLY_KEYS:
                assert f"\n{name} =" not in text, f"{section}.{name} is a flag, not a key"
                continue
            documented = f"\n{name} =" in text or f"[{section}.{name}]" in text
            assert documented, f"{section}.{name} is not documented"
    for endpoint in DEFAULT_QPS:
        assert f"\n{endpoint} =" in text


def test_account_key_ignores_a_trailing_slash_and_tells_accounts_apart() -> None:
    assert AccountSettings("http://h/", "id").key == AccountSettings("http://h", "id").key
    assert AccountSettings("http://h", "a").key != AccountSettings("http://h", "b").key


def test_account_key_never_holds_the_token() -> None:
    by_client = AccountSettings("http://h", "my-client", "secret").key
    assert "my-client" in by_client
    by_token = AccountSettings("http://h", access_token="s3cr3t-tok").key
    assert "s3cr3t-tok" not in by_token
    assert by_token != by_client
    assert AccountSettings("http://h", access_token="another-token").key != by_token


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 604800.0),
        ("12h", 43200.0),
        ("30m", 1800.0),
        ("45s", 45.0),
        ("0", 0.0),
        ("1.5d", 129600.0),
    ],
)
def test_verify_after_is_a_duration(tmp_path: Path, text: str, seconds: float) -> None:
    settings = load_settings(write(tmp_path, f"[cache]\nverify_after = '{text}'\n"), environ={})
    assert settings.cache.verify_after_s == seconds


def test_verify_after_defaults_to_a_week_and_the_index_is_used(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), environ={})
    assert settings.cache.verify_after_s == 7 * 24 * 3600
    assert settings.skip_index is False
