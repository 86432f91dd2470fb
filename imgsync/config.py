"""One validated, frozen settings object.

Where a setting comes from, strongest first (docs/contract.md): a command-line flag, an
``IMGSYNC_*`` environment variable, the TOML file, the default written here. The file is
``--config PATH``, else ``$IMGSYNC_CONFIG``, else ``<user config dir>/imgsync/config.toml``;
a missing default file is fine, a missing file that the user named is an error.

Every mistake in the configuration becomes one :class:`~imgsync.errors.ConfigError` whose message
names the key and the file, so the command line can print one line and exit 2. Nothing here touches
the network, and nothing here checks that credentials exist: commands that need them call
:meth:`Settings.require_credentials`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from imgsync.errors import ConfigError
from imgsync.records import field, record, record_fields, replace

APP_NAME = "imgsync"
DEFAULT_BASE_URL = "https://open-api.123pan.com"

# Client-side requests per second per endpoint. The service publishes no table for the image-bed
# endpoints; these are api-facts.md's defaults, drawn from the cloud-drive equivalents (a guess).
# The limits are per clientID and shared by all of the user's processes, so we stay below them.
DEFAULT_QPS: Mapping[str, float] = MappingProxyType(
    {
        "access_token": 1,
        "create": 2,
        "mkdir": 2,
        "list": 2,
        "detail": 5,
        "delete": 1,
        "move": 1,
        "get_upload_url": 5,
        "upload_complete": 5,
        "upload_async_result": 1,
        "offline": 1,
        "copy": 1,
    }
)

LINK_FIELDS = ("downloadURL", "userSelfURL")

# What sync (and upload of a URL) does with remote images (``sync.remote``, ``--remote``).
REMOTE_MIGRATE = "migrate"  # move them onto the image bed (the service's offline migration)
REMOTE_KEEP = "keep"  # leave every remote link alone, with no request for it
REMOTE_POLICIES = (REMOTE_MIGRATE, REMOTE_KEEP)

# Keys that only a command-line flag may set, for one run: in the file they would stay on for
# every run. ``sync.retry_failed`` in a file would switch the back-off of dead links off for good.
FLAG_ONLY_KEYS: Mapping[str, str] = MappingProxyType({"sync.retry_failed": "--retry-failed"})

# How close a misspelt key must be to a known one for "did you mean" (difflib's ratio; 0.6 is its
# default, which pairs "concurency" with "concurrency" and "clientid" with "client_id").
SUGGESTION_CUTOFF = 0.6

# Permission bits that let other users read a file (group, others): a config file holding a
# secret should have none of them (chmod 600).
READABLE_BY_OTHERS = stat.S_IRGRP | stat.S_IROTH

ENV_CONFIG = "IMGSYNC_CONFIG"
ENV_DATA_DIR = "IMGSYNC_DATA_DIR"
# Environment variable → (section, key).
ENV_OVERRIDES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "IMGSYNC_BASE_URL": ("account", "base_url"),
        "IMGSYNC_CLIENT_ID": ("account", "client_id"),
        "IMGSYNC_CLIENT_SECRET": ("account", "client_secret"),
        "IMGSYNC_ACCESS_TOKEN": ("account", "access_token"),
        "IMGSYNC_SERVE_SECRET": ("serve", "secret"),
    }
)


@record(frozen=True)
class AccountSettings:
    """Who we are at the service."""

    base_url: str = DEFAULT_BASE_URL
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    # A token pasted from the 123pan console, used instead of id/secret. It is never refreshed.
    access_token: str = field(default="", repr=False)

    @property
    def key(self) -> str:
        """One account of one service, as one string: ``<base_url>#<client_id>``.

        What belongs to an account (its tokens, its objects in the local index, its rate limits)
        is kept under this key, so a run against the emulator never hands out the emulator's
        links to a run against the real account. With only a pasted access token there is no
        client ID; a hash of the token stands in for it (the token itself is never stored).
        """
        account = self.client_id
        if not account:
            import hashlib

            account = "token:" + hashlib.sha256(self.access_token.encode()).hexdigest()[:16]
        return f"{self.base_url.rstrip('/')}#{account}"


@record(frozen=True)
class NetworkSettings:
    """How patiently we talk to the service."""

    # Connecting to a healthy host on any network takes well under 10 s; reading may wait on the
    # service's own work (completion of a large upload), so it gets longer.
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    # Total attempts per request. With backoff 0.5, 1, 2, 4, 8 s that is about 15 s of patience
    # before a run reports the service unreachable.
    max_attempts: int = 6
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    qps: Mapping[str, float] = field(default_factory=lambda: DEFAULT_QPS)


@record(frozen=True)
class UploadSettings:
    """Where and how images go up."""

    folder: str = "imgsync/{year}/{month}"
    filename: str = "{md5}{ext}"
    link: str = "downloadURL"
    # Remote images migrated by the service's offline download land here (the root is not allowed).
    remote_folder: str = "imgsync/remote"
    # Files uploaded at once, and slices of one file uploaded at once.
    concurrency: int = 4
    slice_concurrency: int = 3
    # Files up to this size are hashed and uploaded from one in-memory read; larger ones stream.
    memory_threshold: int = 32 * 1024 * 1024
    # How long to wait for asynchronous completion or an offline task before giving up on an image.
    poll_deadline: float = 120.0
    # Links starting with one of these are already on the image bed and left alone.
    hosted_prefixes: tuple[str, ...] = ()
    # Referer sent when imgsync itself downloads a remote image (hotlink-protected hosts).
    referer: str = ""
    # Download cap for remote images fetched by imgsync itself (the service's own limit).
    max_download_bytes: int = 100 * 1024 * 1024
    download_timeout: float = 30.0
    # imgsync's own download refuses hosts with a non-public address (loopback, LAN, link-local
    # such as cloud metadata): a shared note must not publish what only this machine or its
    # network can see. True for users who want their LAN images on the public image bed.
    allow_private_urls: bool = False
    # How `imgsync clip` and the hotkey write a link (imgsync.links): markdown, html, url, or a
    # template with $url, $fileName, $extName. `imgsync upload` prints bare URLs unless given
    # --format: Typora's custom command reads URLs, and a config change must not break it.
    format: str = "markdown"


# PicGo's port, which Typora's and Obsidian's PicGo options call (docs/users.md).
PICGO_PORT = 36677
# Largest TCP port number; 0 asks the system for a free one.
MAX_PORT = 65535


@record(frozen=True)
class ServeSettings:
    """The PicGo-compatible server (`imgsync serve`)."""

    # Loopback only by default: the server uploads local files for whoever can reach it.
    host: str = "127.0.0.1"
    port: int = PICGO_PORT
    # With a secret, uploads need it (Authorization: Bearer, X-PicGo-Secret or ?key=).
    secret: str = field(default="", repr=False)


@record(frozen=True)
class HotkeySettings:
    """The global hotkey daemon (`imgsync hotkey`)."""

    # pynput's chord syntax; xdotool's "ctrl+alt+u" is accepted too.
    keys: str = "<ctrl>+<alt>+u"


#: How long a note must be left alone before ``imgsync watch`` syncs it: editors autosave every
#: 1-2 s while the user types (Obsidian every 2 s) and save in several writes (a temp file, then a
#: rename); 1.5 s lets one save's events settle into one pass without making the user wait.
DEFAULT_WATCH_DEBOUNCE_S = 1.5


@record(frozen=True)
class WatchSettings:
    """The folder watcher (`imgsync watch`)."""

    debounce: float = DEFAULT_WATCH_DEBOUNCE_S
    # How long a note waits for an image it names that is not there yet (editors write a pasted
    # image and the note in either order) before the image is reported missing.
    image_grace: float = 10.0
    # A failed image is tried again after retry_initial seconds, then twice as long each time,
    # up to retry_max.
    retry_initial: float = 30.0
    retry_max: float = 3600.0
    # On SIGINT/SIGTERM, how long to let the uploads in flight finish and their notes be written
    # before leaving those notes as they are (systemd kills after 90 s by default).
    stop_grace: float = 5.0


@record(frozen=True)
class SyncSettings:
    """What happens to remote images (``https://…`` links in notes, URLs given to upload)."""

    # "migrate": moved onto the image bed; "keep": every remote link is left alone, no request.
    remote: str = REMOTE_MIGRATE
    # Try again now the remote URLs that failed in earlier runs, whatever their back-off. Only the
    # flag sets it (``--retry-failed``), for one run.
    retry_failed: bool = False


# Seconds per unit of a duration setting ("7d", "12h", "30m", "45s").
DURATION_UNITS: Mapping[str, int] = MappingProxyType({"s": 1, "m": 60, "h": 3600, "d": 86400})


def parse_duration(text: str) -> float:
    """Seconds of a duration written as a number and a unit (``7d``, ``12h``, ``30m``, ``45s``;
    ``0`` alone is fine); ValueError if it is not one."""
    value = text.strip().lower()
    if value == "0":
        return 0.0
    number, unit = value[:-1].strip(), value[-1:]
    if unit not in DURATION_UNITS or not number:
        raise ValueError(text)
    seconds = float(number) * DURATION_UNITS[unit]
    if not seconds >= 0 or seconds == float("inf"):  # also refuses nan
        raise ValueError(text)
    return seconds


@record(frozen=True)
class CacheSettings:
    """How far the local index is trusted."""

    # An index entry the service has not vouched for in this long is checked with one `detail`
    # before its link is handed out again: images deleted in the console or rejected later are
    # found on their next use. A week costs one request per image and week of use.
    verify_after: str = "7d"

    @property
    def verify_after_s(self) -> float:
        """``verify_after`` in seconds (validated when the settings were loaded)."""
        return parse_duration(self.verify_after)


@record(frozen=True)
class Settings:
    """Everything imgsync is configured with, validated once.

    ``warnings`` are what a user should hear about the configuration without it being an error
    (a config file holding a secret that other users can read): the command line shows them once.
    """

    account: AccountSettings = AccountSettings()
    network: NetworkSettings = NetworkSettings()
    upload: UploadSettings = UploadSettings()
    serve: ServeSettings = ServeSettings()
    hotkey: HotkeySettings = HotkeySettings()
    watch: WatchSettings = WatchSettings()
    sync: SyncSettings = SyncSettings()
    cache: CacheSettings = CacheSettings()
    data_dir: Path = Path(".")
    config_path: Path | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)
    # `--no-cache`: for one run the local index answers nothing (no link, no folder ID, no note
    # stamp); what the run learns from the service is still recorded. Not a config key.
    skip_index: bool = False

    def require_credentials(self) -> None:
        """Raise ConfigError unless there is a pasted token or a client id and secret."""
        acc = self.account
        if acc.access_token or (acc.client_id and acc.client_secret):
            return
        where = self.config_path or "the config file"
        if acc.client_id and not acc.client_secret:
            missing = "account.client_secret"
        elif acc.client_secret and not acc.client_id:
            missing = "account.client_id"
        else:
            missing = "account.client_id and account.client_secret (or account.access_token)"
        raise ConfigError(
            f"{where}: {missing} not set "
            "(or set IMGSYNC_CLIENT_ID/IMGSYNC_CLIENT_SECRET or IMGSYNC_ACCESS_TOKEN)"
        )


SECTIONS: Mapping[str, type] = MappingProxyType(
    {
        "account": AccountSettings,
        "network": NetworkSettings,
        "upload": UploadSettings,
        "serve": ServeSettings,
        "hotkey": HotkeySettings,
        "watch": WatchSettings,
        "sync": SyncSettings,
        "cache": CacheSettings,
    }
)


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME, appauthor=False) / "config.toml"


def default_data_dir() -> Path:
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the Settings: defaults < file < environment < ``overrides`` (from flags).

    ``overrides`` is ``{"section": {"key": value}}``; values of None are ignored, so a command can
    pass its flags through unconditionally.
    """
    env = os.environ if environ is None else environ
    explicit = config_path if config_path is not None else env.get(ENV_CONFIG) or None
    path = Path(explicit).expanduser() if explicit else default_config_path()
    where = str(path)

    raw: dict[str, Any] = _read_toml(path, must_exist=explicit is not None)
    merged: dict[str, dict[str, tuple[Any, str]]] = {}
    for section, values in raw.items():
        if section not in SECTIONS:
            raise ConfigError(f"{where}: {_unknown_section(section)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: {section} must be a table ([{section}])")
        for key in values:
            flag = FLAG_ONLY_KEYS.get(f"{section}.{key}")
            if flag is not None:
                raise ConfigError(
                    f"{where}: {section}.{key} is not a config key: give {flag} on the command "
                    "line, for the run that needs it"
                )
        merged[section] = {key: (value, where) for key, value in values.items()}

    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            merged.setdefault(section, {})[key] = (env[var], f"environment variable {var}")

    for section, values in (overrides or {}).items():
        for key, value in values.items():
            if value is not None:
                merged.setdefault(section, {})[key] = (value, "command line")

    built = {name: _build_section(name, merged.get(name, {})) for name in SECTIONS}
    data_dir_text = env.get(ENV_DATA_DIR)
    data_dir = Path(data_dir_text).expanduser() if data_dir_text else default_data_dir()
    settings = Settings(
        **built, data_dir=data_dir, config_path=path, warnings=_permission_warnings(path, raw)
    )
    _validate(settings, merged, where)
    return settings


def _permission_warnings(path: Path, raw: Mapping[str, Any]) -> tuple[str, ...]:
    """A warning when the file holds a secret and other users may read it (POSIX only: Windows
    has no such bits). A file without a secret may be as open as its owner likes."""
    account = raw.get("account")
    if os.name != "posix" or not isinstance(account, dict):
        return ()
    secrets = [name for name in ("client_secret", "access_token") if account.get(name)]
    if not secrets:
        return ()
    try:
        mode = path.stat().st_mode
    except OSError:
        return ()
    if not mode & READABLE_BY_OTHERS:
        return ()
    import shlex

    held = " and ".join(f"account.{name}" for name in secrets)
    return (
        f"{path} holds {held} and other users of this machine can read it: "
        f"run chmod 600 {shlex.quote(str(path))}",
    )


def _unknown_section(section: str) -> str:
    """The message for a table (or top-level key) that is not a section, with a suggestion."""
    homes = [name for name, cls in SECTIONS.items() if section in _field_names(cls)]
    if homes:
        return f"{section} belongs in [{homes[0]}] ({homes[0]}.{section}), not at the top"
    return f"unknown section [{section}]" + _did_you_mean(section, list(SECTIONS), "[{}]")


def _unknown_key(section: str, key: str) -> str:
    """The message for a key its section does not have: the section that does have it (a key
    put under the wrong table), else the closest key of the section."""
    message = f"unknown key {section}.{key}"
    homes = [name for name, cls in SECTIONS.items() if key in _field_names(cls)]
    if homes:
        return f"{message}; did you mean {homes[0]}.{key} (in [{homes[0]}])?"
    return message + _did_you_mean(key, sorted(_field_names(SECTIONS[section])), f"{section}.{{}}")


def _did_you_mean(word: str, known: list[str], shape: str) -> str:
    """``"; did you mean X?"`` for the known word closest to ``word``, or "" when none is close."""
    import difflib

    close = difflib.get_close_matches(word, known, n=1, cutoff=SUGGESTION_CUTOFF)
    return f"; did you mean {shape.format(close[0])}?" if close else ""


def _field_names(cls: type) -> set[str]:
    return {f.name for f in record_fields(cls)}


def _read_toml(path: Path, *, must_exist: bool) -> dict[str, Any]:
    import tomllib

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if must_exist:
            raise ConfigError(f"{path}: config file not found") from None
        return {}
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _build_section(name: str, values: Mapping[str, tuple[Any, str]]) -> Any:
    cls = SECTIONS[name]
    known = {f.name: f for f in record_fields(cls)}
    defaults = cls()
    kwargs: dict[str, Any] = {}
    for key, (value, source) in values.items():
        if key not in known:
            raise ConfigError(f"{source}: {_unknown_key(name, key)}")
        kwargs[key] = _coerce(f"{name}.{key}", getattr(defaults, key), value, source)
    return replace(defaults, **kwargs)


def _coerce(key: str, default: Any, value: Any, source: str) -> Any:
    """Check ``value`` against the type of the key's default."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        expected = "a whole number"
    elif isinstance(default, float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        expected = "a number"
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
        expected = "a string"
    elif isinstance(default, tuple):
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        expected = "a list of strings"
    elif isinstance(default, Mapping):
        if isinstance(value, Mapping):
            return _coerce_qps(key, value, source)
        expected = "a table"
    else:  # pragma: no cover - every field's default is one of the above
        raise AssertionError(key)
    shown = "a secret value" if "secret" in key or "token" in key else repr(value)
    raise ConfigError(f"{source}: {key} must be {expected}, not {shown}")


def _coerce_qps(key: str, value: Mapping[str, Any], source: str) -> Mapping[str, float]:
    qps = dict(DEFAULT_QPS)
    for endpoint, rate in value.items():
        if endpoint not in DEFAULT_QPS:
            near = _did_you_mean(endpoint, sorted(DEFAULT_QPS), f"{key}.{{}}")
            raise ConfigError(
                f"{source}: unknown key {key}.{endpoint}"
                + (near or f" (known: {', '.join(sorted(DEFAULT_QPS))})")
            )
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0:
            raise ConfigError(f"{source}: {key}.{endpoint} must be a number ≥ 0 (0 = no limit)")
        qps[endpoint] = float(rate)
    return MappingProxyType(qps)


def _validate(
    settings: Settings, merged: Mapping[str, Mapping[str, tuple[Any, str]]], where: str
) -> None:
    """Range and value checks that types alone do not catch."""

    def source(section: str, key: str) -> str:
        return merged.get(section, {}).get(key, (None, where))[1]

    acc, net, up = settings.account, settings.network, settings.upload
    if not acc.base_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{source('account', 'base_url')}: account.base_url must start with http:// or "
            f"https://, not {acc.base_url!r}"
        )
    positive = {
        ("network", "connect_timeout"): net.connect_timeout,
        ("network", "read_timeout"): net.read_timeout,
        ("network", "max_attempts"): net.max_attempts,
        ("upload", "concurrency"): up.concurrency,
        ("upload", "slice_concurrency"): up.slice_concurrency,
        ("upload", "poll_deadline"): up.poll_deadline,
        ("upload", "max_download_bytes"): up.max_download_bytes,
        ("upload", "download_timeout"): up.download_timeout,
        ("watch", "debounce"): settings.watch.debounce,
        ("watch", "image_grace"): settings.watch.image_grace,
        ("watch", "retry_initial"): settings.watch.retry_initial,
        ("watch", "retry_max"): settings.watch.retry_max,
        ("watch", "stop_grace"): settings.watch.stop_grace,
    }
    for (section, key), value in positive.items():
        if value <= 0:
            raise ConfigError(f"{source(section, key)}: {section}.{key} must be greater than 0")
    for section, key, value in (
        ("network", "backoff_initial", net.backoff_initial),
        ("network", "backoff_max", net.backoff_max),
        ("upload", "memory_threshold", up.memory_threshold),
    ):
        if value < 0:
            raise ConfigError(f"{source(section, key)}: {section}.{key} must not be negative")
    if up.link not in LINK_FIELDS:
        raise ConfigError(
            f"{source('upload', 'link')}: upload.link must be one of "
            f"{', '.join(LINK_FIELDS)}, not {up.link!r}"
        )
    _validate_desktop(settings, merged, source)
    for section, key, value, allowed in (
        ("upload", "link", up.link, LINK_FIELDS),
        ("sync", "remote", settings.sync.remote, REMOTE_POLICIES),
    ):
        if value not in allowed:
            raise ConfigError(
                f"{source(section, key)}: {section}.{key} must be one of "
                f"{', '.join(allowed)}, not {value!r}" + _did_you_mean(value, list(allowed), "{}")
            )
    try:
        settings.cache.verify_after_s  # noqa: B018 - parsed to be checked
    except ValueError:
        raise ConfigError(
            f"{source('cache', 'verify_after')}: cache.verify_after must be a duration like"
            f' "7d", "12h", "30m" or "0", not {settings.cache.verify_after!r}'
        ) from None
    for key, kind in (("folder", "folder"), ("remote_folder", "folder"), ("filename", "filename")):
        if key not in merged.get("upload", {}):
            continue  # the default, valid (tests/test_config.py): no need to load the rules
        from imgsync.naming import validate_template

        try:
            validate_template(getattr(up, key), kind=kind)
        except ConfigError as exc:
            raise ConfigError(f"{source('upload', key)}: upload.{key}: {exc}") from None


def _validate_desktop(
    settings: Settings, merged: Mapping[str, Mapping[str, Any]], source: Callable[[str, str], str]
) -> None:
    """The keys of the clip, hotkey and serve commands."""
    if "format" in merged.get("upload", {}):  # else the default, valid (tests/test_config.py)
        from imgsync.links import validate_format

        try:
            validate_format(settings.upload.format)
        except ConfigError as exc:
            raise ConfigError(f"{source('upload', 'format')}: upload.format: {exc}") from None
    serve, hotkey = settings.serve, settings.hotkey
    if not 0 <= serve.port <= MAX_PORT:
        raise ConfigError(
            f"{source('serve', 'port')}: serve.port must be 0 to {MAX_PORT} (0: a free port)"
        )
    if not serve.host.strip():
        raise ConfigError(f"{source('serve', 'host')}: serve.host must not be empty")
    if not hotkey.keys.strip():
        raise ConfigError(f"{source('hotkey', 'keys')}: hotkey.keys must not be empty")
