"""Where an index lives: a local folder, or a URI on object storage (``s3://bucket/prefix``, ``gs://``, ``az://``).

A shared index is the same LanceDB tables kept in a bucket, so a file server or a GPU box can index for a whole
team while laptops search it. This module turns what the user typed (``--index-dir`` / the settings) into an
:class:`IndexLocation` value, resolves credentials at the moment of use (environment, AWS profile files, the
platform keychain) so that no secret is ever written to the settings file, and gives the rest of the core the
two things it needs from the bucket besides LanceDB itself: the storage options LanceDB takes, and a small
object-store client (``obstore``: the same Rust ``object_store`` crate Lance uses, ~15 MB) for the index
description, the writer lease (``lease.py``) and the index size.

Credentials are never looked up on the cloud's instance-metadata address unless the user asks for it
(``instance_metadata=true``): without any credentials the user gets one clear error instead of a slow probe.
"""

from __future__ import annotations

import configparser
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = [
    "REMOTE_SCHEMES", "IndexLocation", "MissingCredentials", "RemoteError", "is_uri", "parse_options",
    "public_options", "keychain_get", "keychain_set", "keychain_delete",
]

# The schemes LanceDB opens (object_store): Amazon S3 and S3-compatible stores, Google Cloud Storage, Azure.
REMOTE_SCHEMES = ("s3", "s3a", "gs", "az", "abfs", "abfss")
KEYCHAIN_SERVICE = "desktop-search"
# Option names a user types, as LanceDB (object_store) spells them for S3. Anything else is passed on unchanged,
# so every LanceDB storage option works (``aws_virtual_hosted_style_request``, ``google_service_account`` ...).
_S3_ALIASES = {
    "endpoint": "aws_endpoint", "region": "aws_region", "access_key_id": "aws_access_key_id",
    "secret_access_key": "aws_secret_access_key", "session_token": "aws_session_token",
}
# Options that say how to find credentials, not LanceDB options.
_OWN_OPTIONS = {"profile", "instance_metadata"}
# Substrings of option names that hold secrets: never saved in the settings file, never printed.
_SECRET_MARKERS = ("secret", "access_key_id", "session_token", "token", "password", "account_key", "sas_key",
                   "service_account_key", "client_secret")
# Requests to the store fail fast enough to be reported (object_store's default is 10 retries over 3 minutes).
_CLIENT_RETRIES, _CLIENT_RETRY_TIMEOUT_S = 3, 30


class RemoteError(RuntimeError):
    """The object store cannot be used (bad URI, unreachable endpoint, refused request): one line for the user."""


class MissingCredentials(RemoteError):
    """No credentials were found for a shared index."""


def is_uri(text: str | os.PathLike[str] | None) -> bool:
    """Whether ``text`` names an object-store location (``s3://...``) rather than a local folder."""
    if text is None or isinstance(text, Path):
        return False
    scheme, sep, _rest = str(text).partition("://")
    return bool(sep) and scheme.lower() in REMOTE_SCHEMES


def is_secret(key: str) -> bool:
    key = key.lower()
    return any(m in key for m in _SECRET_MARKERS)


def parse_options(items: Iterable[str] | str | None) -> tuple[tuple[str, str], ...]:
    """``["endpoint=http://host:9000", "region=eu-west-1"]`` (or one comma-separated string) -> sorted pairs.
    Raises ValueError naming the bad item."""
    if not items:
        return ()
    if isinstance(items, str):
        items = [part for part in items.split(",") if part.strip()]
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"storage option {item!r} is not KEY=VALUE (e.g. endpoint=http://127.0.0.1:9000)")
        out[key] = value.strip()
    return tuple(sorted(out.items()))


def public_options(options: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The options that may be stored in the settings file or shown: every secret removed."""
    return tuple((k, v) for k, v in options if not is_secret(k))


def _truthy(value: str | None) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class IndexLocation:
    """A shared index: ``uri`` (no trailing slash) and the storage options given with it (may hold secrets
    passed on the command line for this run; :func:`public_options` before saving them)."""

    uri: str
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, uri: str, options: Iterable[tuple[str, str]] = ()) -> "IndexLocation":
        scheme, sep, rest = uri.strip().partition("://")
        if not sep or scheme.lower() not in REMOTE_SCHEMES:
            raise RemoteError(f"{uri!r} is not an object-store URI (s3://bucket/prefix, gs://..., az://...)")
        bucket = rest.split("/", 1)[0]
        if not bucket:
            raise RemoteError(f"{uri!r} names no bucket (expected {scheme}://bucket/prefix)")
        return cls(f"{scheme.lower()}://{rest.strip('/')}", tuple(sorted(dict(options).items())))

    def __str__(self) -> str:
        return self.uri

    @property
    def scheme(self) -> str:
        return self.uri.split("://", 1)[0]

    @property
    def is_s3(self) -> bool:
        return self.scheme in ("s3", "s3a")

    @property
    def lance_uri(self) -> str:
        """Where the LanceDB database lives (tables are folders below it), as in a local index."""
        return self.uri + "/lance"

    def option(self, key: str) -> str | None:
        return dict(self.options).get(key)

    # -- credentials and options ------------------------------------------------------------------------
    def resolved(self) -> dict[str, str]:
        """Every storage option with credentials filled in, in LanceDB's spelling (``aws_endpoint`` ...).
        Raises :class:`MissingCredentials` for an S3 location with no way to sign requests."""
        given = dict(self.options)
        opts: dict[str, str] = {}
        for key, value in given.items():
            if key in _OWN_OPTIONS:
                continue
            opts[_S3_ALIASES.get(key, key) if self.is_s3 else key] = value
        if not self.is_s3:
            return opts
        if "aws_endpoint" in opts and "aws_region" not in opts:
            opts["aws_region"] = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        if opts.get("aws_endpoint", "").startswith("http://"):
            opts.setdefault("allow_http", "true")
        if _truthy(opts.get("aws_skip_signature") or opts.get("skip_signature")):
            return opts  # a public bucket
        if opts.get("aws_access_key_id") and opts.get("aws_secret_access_key"):
            return opts
        creds = self._credentials(given.get("profile"))
        if creds is None:
            raise MissingCredentials(
                f"no credentials for {self.uri}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile "
                "from ~/.aws/credentials (AWS_PROFILE or --storage-option profile=NAME), or save keys in the "
                "keychain with `desktop-search credentials set URI`"
            )
        for key, value in creds.items():
            if value:
                opts.setdefault(key, value)
        return opts

    def _credentials(self, profile: str | None) -> dict[str, str] | None:
        env = os.environ
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY") and not profile:
            return {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
                    "aws_session_token": env.get("AWS_SESSION_TOKEN", "")}
        stored = keychain_get(self.uri)
        if stored and not profile:
            return stored
        found = _profile_credentials(profile or env.get("AWS_PROFILE") or "default", explicit=bool(profile or env.get("AWS_PROFILE")))
        if found:
            return found
        # Sources object_store resolves by itself: web identity (Kubernetes), ECS container credentials, or the
        # instance metadata service when the user asked for it.
        if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") or env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or \
                env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") or _truthy(self.option("instance_metadata")):
            return {}
        return None

    def lance_options(self) -> dict[str, str]:
        """Storage options for ``lancedb.connect``: credentials plus bounded retries."""
        opts = self.resolved()
        opts.setdefault("client_max_retries", str(_CLIENT_RETRIES))
        opts.setdefault("client_retry_timeout", str(_CLIENT_RETRY_TIMEOUT_S))
        return opts

    # -- the small object-store client ------------------------------------------------------------------
    def client(self) -> Any:
        """An ``obstore`` store rooted at this location's prefix (for the description, the lease, sizes)."""
        try:
            from obstore.store import from_url
        except ImportError as e:  # pragma: no cover - a broken install
            raise RemoteError(f"shared indexes need the obstore package ({e})") from None
        opts = self.resolved()
        allow_http = _truthy(opts.pop("allow_http", None))
        opts = {k: v for k, v in opts.items() if not k.startswith("client_")}
        if self.is_s3:
            opts = {k: v for k, v in opts.items() if k.startswith("aws_")}
            opts.pop("aws_skip_signature", None)
            if _truthy(dict(self.options).get("skip_signature") or dict(self.options).get("aws_skip_signature")):
                opts["aws_skip_signature"] = "true"
        # Plain dicts for obstore's per-provider TypedDicts (which one applies depends on the URI's scheme).
        config: Any = opts or None
        client_options: Any = {"allow_http": allow_http, "connect_timeout": "5s", "timeout": "30s"}
        retry_config: Any = {
            "max_retries": _CLIENT_RETRIES, "retry_timeout": timedelta(seconds=_CLIENT_RETRY_TIMEOUT_S),
            "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=2), "base": 2.0},
        }
        try:
            return from_url(self.uri, config=config, client_options=client_options, retry_config=retry_config)
        except BaseException as e:  # obstore raises a Rust panic for a malformed option: still one line
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            raise RemoteError(f"cannot use {self.uri}: {first_line(e)}") from None

    def read_json(self, client: Any, name: str) -> dict[str, Any] | None:
        """A small JSON object below the prefix, or None if there is none."""
        import obstore

        try:
            raw = bytes(obstore.get(client, name).bytes())
        except FileNotFoundError:
            return None
        except Exception as e:
            raise describe(e, self.uri) from None
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ValueError(f"{self.uri}/{name} is not valid JSON ({e})") from None
        return value if isinstance(value, dict) else None

    def write_json(self, client: Any, name: str, value: Mapping[str, Any]) -> None:
        import obstore

        try:
            obstore.put(client, name, json.dumps(value, indent=2).encode("utf-8"))
        except Exception as e:
            raise describe(e, self.uri) from None

    def total_bytes(self, client: Any) -> int:
        import obstore

        total = 0
        try:
            for batch in obstore.list(client, None, chunk_size=1000):
                total += sum(int(meta["size"]) for meta in batch)
        except Exception as e:
            raise describe(e, self.uri) from None
        return total


def first_line(exc: BaseException) -> str:
    """obstore's messages carry a multi-line debug dump: the first line says what happened."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def describe(exc: BaseException, uri: str) -> RemoteError:
    """An object-store failure as one line the user can act on."""
    text = str(exc)
    if "403" in text or "Forbidden" in text or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
        return RemoteError(f"access to {uri} was refused: check the credentials and the bucket's permissions")
    if "NoSuchBucket" in text:
        return RemoteError(f"the bucket of {uri} does not exist")
    if "Connection refused" in text or "error sending request" in text or "dns error" in text or "timed out" in text:
        return RemoteError(f"cannot reach the object store for {uri}: {first_line(exc)}")
    return RemoteError(f"{uri}: {first_line(exc)}")


def _profile_credentials(profile: str, *, explicit: bool) -> dict[str, str] | None:
    """Static keys of a profile in the AWS shared credentials/config files (what ``aws configure`` writes).
    SSO and assume-role profiles need the AWS CLI to produce keys: export them as environment variables."""
    home = Path.home()
    files = [
        (Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials"), profile),
        (Path(os.environ.get("AWS_CONFIG_FILE") or home / ".aws" / "config"),
         profile if profile == "default" else f"profile {profile}"),
    ]
    found: dict[str, str] = {}
    for path, section in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, configparser.Error):
            continue
        if parser.has_section(section):
            for key in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "region"):
                if parser.has_option(section, key) and key not in found:
                    found[key] = parser.get(section, key).strip()
    if found.get("aws_access_key_id") and found.get("aws_secret_access_key"):
        region = found.pop("region", None)
        if region:
            found["aws_region"] = region
        return found
    if explicit:
        raise MissingCredentials(f"AWS profile {profile!r} has no access keys in ~/.aws/credentials or ~/.aws/config")
    return None


# -- the platform keychain ----------------------------------------------------------------------------------
def _keyring() -> Any:
    """The ``keyring`` module when the platform has a usable keychain, else None."""
    if os.environ.get("DESKTOP_SEARCH_NO_KEYCHAIN"):
        return None
    try:
        import keyring

        # The "fail" backend (priority 0) is what keyring picks when the platform has no keychain.
        return keyring if keyring.get_keyring().priority > 0 else None
    except Exception:  # no keyring package, or no usable backend (a headless server)
        return None


def keychain_get(uri: str) -> dict[str, str] | None:
    kr = _keyring()
    if kr is None:
        return None
    try:
        raw = kr.get_password(KEYCHAIN_SERVICE, uri)
        value = json.loads(raw) if raw else None
    except Exception:  # a locked or broken keychain: as if nothing were stored
        return None
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None


def keychain_set(uri: str, access_key_id: str, secret_access_key: str, session_token: str = "") -> None:
    """Keep S3 keys for ``uri`` in the platform keychain (macOS Keychain, Windows Credential Locker, Secret
    Service on Linux). Raises RemoteError where there is none: use environment variables or a profile then."""
    kr = _keyring()
    if kr is None:
        raise RemoteError("no keychain is available on this machine: set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
                          "or AWS_PROFILE instead (nothing secret is written to the settings file)")
    value = {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key}
    if session_token:
        value["aws_session_token"] = session_token
    try:
        kr.set_password(KEYCHAIN_SERVICE, uri, json.dumps(value))
    except Exception as e:
        raise RemoteError(f"the keychain refused to store the keys: {first_line(e)}") from None


def keychain_delete(uri: str) -> bool:
    kr = _keyring()
    if kr is None:
        return False
    try:
        kr.delete_password(KEYCHAIN_SERVICE, uri)
        return True
    except Exception:
        return False
