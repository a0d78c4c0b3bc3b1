"""Token-signing keys: several at once, so that signing keys rotate without downtime.

Each key has a life in three parts. From ``created_at`` it is published in the
JWKS but does not sign yet, so that verifiers caching the JWKS learn it first;
from ``activates_at`` it is the signing key (the newest active key signs); once
a newer key takes over, it keeps verifying until ``retires_at``, when the last
token it signed has expired. Private keys are stored wrapped under the JWT KEK,
never in clear, and every server process reads the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import BigInteger, LargeBinary, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from stb_origin.auth.jwk import public_jwk, thumbprint
from stb_origin.db import Base
from stb_origin.envelope import Envelope

_WRAP_CONTEXT = b"stb-origin/jwt-signing-key"


class SigningKeyRecord(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    # Unix seconds: compared in Python and SQL alike, on every engine.
    created_at: Mapped[int] = mapped_column(BigInteger)
    activates_at: Mapped[int] = mapped_column(BigInteger)
    retires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    created_at: int
    activates_at: int
    retires_at: int | None

    def verifies_at(self, now: float) -> bool:
        return self.retires_at is None or now < self.retires_at


@dataclass(frozen=True)
class KeyRing:
    """An immutable snapshot of the stored keys."""

    keys: tuple[SigningKey, ...]

    def signing_key(self, now: float) -> SigningKey | None:
        usable = [k for k in self.keys if k.activates_at <= now and k.verifies_at(now)]
        return max(usable, key=lambda k: (k.activates_at, k.kid), default=None)

    def verifies(self, kid: str, now: float) -> bool:
        """verifying_key(kid, now) is not None, without deriving the public key."""
        return any(key.kid == kid and key.verifies_at(now) for key in self.keys)

    def verifying_key(self, kid: str, now: float) -> ec.EllipticCurvePublicKey | None:
        for key in self.keys:
            if key.kid == kid and key.verifies_at(now):
                return key.private_key.public_key()
        return None

    def jwks(self, now: float) -> dict[str, list[dict[str, str]]]:
        return {"keys": [public_jwk(k.private_key.public_key(), k.kid)
                         for k in sorted(self.keys, key=lambda k: k.activates_at)
                         if k.verifies_at(now)]}


def load_ring(session: Session, envelope: Envelope) -> KeyRing:
    records = session.scalars(select(SigningKeyRecord)).all()
    return KeyRing(tuple(_unwrap(envelope, record) for record in records))


def ensure_signing_key(session: Session, envelope: Envelope, now: int) -> None:
    """Create a key that signs at once if none can (the first start)."""
    if load_ring(session, envelope).signing_key(now) is None:
        _add(session, envelope, created_at=now, activates_at=now)


def rotate(session: Session, envelope: Envelope, now: int, activation_delay_s: int,
           max_token_lifetime_s: int) -> SigningKey:
    """Add a key that signs from ``now + activation_delay_s``; the keys signing
    until then retire once the last token they can still sign has expired."""
    activates_at = now + activation_delay_s
    session.execute(delete(SigningKeyRecord).where(SigningKeyRecord.retires_at <= now))
    session.execute(
        update(SigningKeyRecord)
        .where(SigningKeyRecord.retires_at.is_(None))
        .values(retires_at=activates_at + max_token_lifetime_s))
    return _add(session, envelope, created_at=now, activates_at=activates_at)


def list_keys(session: Session, envelope: Envelope) -> Sequence[SigningKey]:
    return sorted(load_ring(session, envelope).keys, key=lambda k: k.created_at)


def _add(session: Session, envelope: Envelope, created_at: int,
         activates_at: int) -> SigningKey:
    private_key = ec.generate_private_key(ec.SECP256R1())
    kid = thumbprint(private_key.public_key())
    pem = private_key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    session.add(SigningKeyRecord(kid=kid, wrapped=envelope.seal(pem, _WRAP_CONTEXT, kid),
                                 created_at=created_at, activates_at=activates_at))
    session.flush()
    return SigningKey(kid, private_key, created_at, activates_at, None)


def _unwrap(envelope: Envelope, record: SigningKeyRecord) -> SigningKey:
    # The kid is bound in as associated data: a row's key cannot be swapped for another's.
    der = envelope.open(record.wrapped, _WRAP_CONTEXT, record.kid)
    private_key = serialization.load_der_private_key(der, password=None)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"signing key {record.kid} is not an EC key")
    return SigningKey(record.kid, private_key, record.created_at, record.activates_at,
                      record.retires_at)
