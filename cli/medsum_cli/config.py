"""Where the CLI sends requests, and as whom: local stack discovery and credential resolution.

Resolution order (first match wins):

- API URL: ``--api-url`` > ``api_url`` of ``.medsum/local-stack.json`` (searched in the current
  directory and its parents) > ``$MEDSUM_API_URL``.
- Credentials: ``--identity`` (an entry of the local stack's ``identities``) > ``--profile`` (a botocore
  profile) > the local stack's ``clinic-a`` identity when the target *is* the local stack > botocore's
  default chain (environment, shared config and credentials files, SSO, container, instance metadata).
- Region: ``--region`` > the local stack's ``region`` when the target is the local stack > the botocore
  session's region > ``us-east-1``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError

LOCAL_STACK_FILE = Path(".medsum") / "local-stack.json"
API_URL_ENV = "MEDSUM_API_URL"
DEFAULT_IDENTITY = "clinic-a"
DEFAULT_REGION = "us-east-1"

BotocoreSessionFactory = Callable[[str | None], Any]


class ConfigError(Exception):
    """The CLI cannot tell where to send requests or which credentials to sign them with."""


@dataclass(frozen=True)
class Identity:
    """One principal of the local stack (``identities`` entry of ``local-stack.json``)."""

    name: str
    role: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def credentials(self) -> Credentials:
        """Return botocore credentials for this identity.

        Returns
        -------
        botocore.credentials.Credentials
            Static credentials, ready for ``SigV4Auth``.
        """
        return Credentials(self.access_key_id, self.secret_access_key, self.session_token)


@dataclass(frozen=True)
class LocalStack:
    """The parts of ``.medsum/local-stack.json`` the CLI uses."""

    path: Path
    api_url: str
    region: str | None
    identities: tuple[Identity, ...]

    def identity(self, name: str) -> Identity:
        """Return the identity called ``name``.

        Parameters
        ----------
        name
            Identity name, e.g. ``clinic-a``, ``clinic-b`` or ``operator``.

        Returns
        -------
        Identity
            The matching entry.

        Raises
        ------
        ConfigError
            If there is no such identity (the message lists the known names).
        """
        for identity in self.identities:
            if identity.name == name:
                return identity
        known = ", ".join(i.name for i in self.identities) or "none"
        raise ConfigError(f"identity {name!r} not found in {self.path} (known: {known})")


@dataclass(frozen=True)
class Settings:
    """Everything a :class:`~medsum_cli.client.MedsumClient` needs, fully resolved."""

    api_url: str
    region: str
    credentials: Credentials = field(repr=False)
    credential_source: str
    local_stack: LocalStack | None = None

    @property
    def targets_local_stack(self) -> bool:
        """Whether requests go to the local stack described by :attr:`local_stack`."""
        return self.local_stack is not None and _same_url(self.api_url, self.local_stack.api_url)


def find_local_stack(start: Path | None = None) -> Path | None:
    """Find ``.medsum/local-stack.json`` in ``start`` or the nearest of its parents.

    Parameters
    ----------
    start
        Directory to start from; defaults to the current working directory.

    Returns
    -------
    pathlib.Path or None
        Path of the file, or ``None`` when no directory up to the root has one.
    """
    directory = (start or Path.cwd()).resolve()
    for candidate in (directory, *directory.parents):
        path = candidate / LOCAL_STACK_FILE
        if path.is_file():
            return path
    return None


def load_local_stack(path: Path) -> LocalStack:
    """Read and check a ``local-stack.json`` file.

    Parameters
    ----------
    path
        The file written by the local stack when it is ready.

    Returns
    -------
    LocalStack
        API URL, region and identities.

    Raises
    ------
    ConfigError
        If the file cannot be read, is not JSON, or lacks ``api_url`` or well-formed identities.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must contain a JSON object")
    api_url = data.get("api_url")
    if not isinstance(api_url, str) or not api_url:
        raise ConfigError(f"{path} has no 'api_url'")
    region = data.get("region")
    identities: list[Identity] = []
    for index, entry in enumerate(data.get("identities") or []):
        try:
            identities.append(
                Identity(
                    name=str(entry["name"]),
                    role=str(entry.get("role", "")),
                    access_key_id=str(entry["access_key_id"]),
                    secret_access_key=str(entry["secret_access_key"]),
                    session_token=entry.get("session_token"),
                )
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"{path}: identities[{index}] needs name, access_key_id, secret_access_key"
            ) from exc
    return LocalStack(
        path=path,
        api_url=api_url.rstrip("/"),
        region=region if isinstance(region, str) and region else None,
        identities=tuple(identities),
    )


def resolve_settings(
    *,
    api_url: str | None = None,
    identity: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    botocore_session_factory: BotocoreSessionFactory | None = None,
) -> Settings:
    """Resolve API URL, region and credentials from options, the local stack file and the environment.

    Parameters
    ----------
    api_url
        ``--api-url``; overrides everything else.
    identity
        ``--identity``: name of a local stack identity to sign as.
    profile
        ``--profile``: botocore profile name.
    region
        ``--region``: signing region.
    cwd
        Where to start looking for ``.medsum/local-stack.json`` (default: the current directory).
    env
        Environment used for ``MEDSUM_API_URL`` (default: ``os.environ``). botocore reads its own
        variables (``AWS_*``) from the process environment.
    botocore_session_factory
        ``factory(profile) -> botocore session``; injectable for tests.

    Returns
    -------
    Settings
        The resolved settings.

    Raises
    ------
    ConfigError
        If no API URL is configured, the local stack file is needed but missing or invalid, the
        profile does not exist, or no credentials can be found.
    """
    environ = os.environ if env is None else env
    session_factory = botocore_session_factory or _botocore_session

    stack_path = find_local_stack(cwd)
    stack = load_local_stack(stack_path) if stack_path is not None else None

    resolved_url = api_url or (stack.api_url if stack else None) or environ.get(API_URL_ENV) or None
    if not resolved_url:
        raise ConfigError(
            f"no API URL: pass --api-url, set {API_URL_ENV}, or start the local stack (`make run`) "
            f"so that {LOCAL_STACK_FILE} exists in this directory or a parent"
        )
    resolved_url = resolved_url.rstrip("/")
    targets_local = stack is not None and _same_url(resolved_url, stack.api_url)

    session: Any = None

    def botocore_session() -> Any:
        nonlocal session
        if session is None:
            try:
                session = session_factory(profile)
            except BotoCoreError as exc:  # e.g. ProfileNotFound
                raise ConfigError(str(exc)) from exc
        return session

    credentials: Credentials | None
    if identity is not None:
        if stack is None:
            raise ConfigError(
                f"--identity needs {LOCAL_STACK_FILE} (written by the local stack), "
                "but none was found in this directory or its parents"
            )
        credentials = stack.identity(identity).credentials()
        source = f"identity {identity} ({stack.path})"
    elif profile is not None:
        credentials = _session_credentials(botocore_session())
        if credentials is None:
            raise ConfigError(f"profile {profile!r} has no credentials")
        source = f"profile {profile}"
    elif targets_local and stack is not None:
        credentials = stack.identity(DEFAULT_IDENTITY).credentials()
        source = f"identity {DEFAULT_IDENTITY} ({stack.path})"
    else:
        credentials = _session_credentials(botocore_session())
        if credentials is None:
            raise ConfigError(
                "no AWS credentials found: pass --profile or --identity, or configure the default "
                "credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, SSO, ...)"
            )
        source = "default credential chain"

    resolved_region = region
    if not resolved_region and targets_local and stack is not None:
        resolved_region = stack.region
    if not resolved_region:
        resolved_region = _session_region(botocore_session())
    return Settings(
        api_url=resolved_url,
        region=resolved_region or DEFAULT_REGION,
        credentials=credentials,
        credential_source=source,
        local_stack=stack,
    )


def _botocore_session(profile: str | None) -> Any:
    return botocore.session.Session(profile=profile)


def _session_credentials(session: Any) -> Credentials | None:
    try:
        credentials: Credentials | None = session.get_credentials()
    except BotoCoreError as exc:
        raise ConfigError(f"cannot load AWS credentials: {exc}") from exc
    return credentials


def _session_region(session: Any) -> str | None:
    try:
        value = session.get_config_variable("region")
    except BotoCoreError:
        return None
    return value if isinstance(value, str) and value else None


def _same_url(left: str, right: str) -> bool:
    return left.rstrip("/").lower() == right.rstrip("/").lower()
