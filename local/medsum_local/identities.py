"""Local IAM identities: users created in the emulator's IAM, with access keys the gateway verifies.

API Gateway's ``AWS_IAM`` authorization needs two things locally: principals with access keys (IAM
users in moto, so ``identity.userArn`` is a real IAM ARN the api function can store as the owner) and
the secret of each key, to recompute signatures (moto never returns a secret twice, so it is kept from
``CreateAccessKey``'s answer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from botocore.credentials import Credentials

__all__ = ["DEFAULT_IDENTITIES", "Identity", "IdentityRegistry", "create_identities"]

#: ``(user name, role)`` of the identities every local stack has.
DEFAULT_IDENTITIES: tuple[tuple[str, str], ...] = (
    ("clinic-a", "client"),
    ("clinic-b", "client"),
    ("operator", "operator"),
)
_ROLE_TAG = "medsum:role"


@dataclass(frozen=True)
class Identity:
    """An IAM user with one access key.

    Attributes
    ----------
    name
        IAM user name (``clinic-a``).
    role
        ``client`` or ``operator`` (also the ``medsum:role`` tag of the user).
    access_key_id, secret_access_key
        The user's access key.
    arn
        The user's ARN (``arn:aws:iam::123456789012:user/clinic-a``).
    user_id
        The user's unique id (``AIDA...``), API Gateway's ``identity.user`` / ``identity.caller``.
    account_id
        The account of the user.
    """

    name: str
    role: str
    access_key_id: str
    secret_access_key: str
    arn: str
    user_id: str
    account_id: str

    def credentials(self) -> Credentials:
        """botocore credentials of the user's access key, to sign requests as this identity."""
        return Credentials(self.access_key_id, self.secret_access_key)

    def public(self) -> dict[str, str]:
        """The identity as written to ``.medsum/local-stack.json``."""
        data = asdict(self)
        return {key: data[key] for key in ("name", "role", "access_key_id", "secret_access_key", "arn")}


class IdentityRegistry:
    """Access key id -> :class:`Identity`, the gateway's view of IAM credentials (thread-safe reads)."""

    def __init__(self, identities: Iterable[Identity] = ()) -> None:
        self._by_key: dict[str, Identity] = {}
        for identity in identities:
            self.add(identity)

    def add(self, identity: Identity) -> None:
        """Register (or replace) an identity."""
        self._by_key[identity.access_key_id] = identity

    def get(self, access_key_id: str) -> Identity | None:
        """Return the identity owning ``access_key_id``, or None for an unknown key."""
        return self._by_key.get(access_key_id)

    def __iter__(self) -> Any:
        return iter(list(self._by_key.values()))

    def __len__(self) -> int:
        return len(self._by_key)

    def by_name(self) -> Mapping[str, Identity]:
        """The identities by user name."""
        return {identity.name: identity for identity in self._by_key.values()}


def create_identities(iam: Any, specs: Iterable[tuple[str, str]] = DEFAULT_IDENTITIES) -> list[Identity]:
    """Create one IAM user with one access key per ``(name, role)`` in the emulator's IAM.

    Parameters
    ----------
    iam
        A boto3 IAM client pointed at the emulator.
    specs
        ``(user name, role)`` pairs.

    Returns
    -------
    list of Identity
    """
    identities: list[Identity] = []
    for name, role in specs:
        user = iam.create_user(UserName=name, Tags=[{"Key": _ROLE_TAG, "Value": role}])["User"]
        key = iam.create_access_key(UserName=name)["AccessKey"]
        identities.append(
            Identity(
                name=name,
                role=role,
                access_key_id=key["AccessKeyId"],
                secret_access_key=key["SecretAccessKey"],
                arn=user["Arn"],
                user_id=user["UserId"],
                account_id=user["Arn"].split(":")[4],
            )
        )
    return identities
