from __future__ import annotations

import base64
import os
import stat
import sys
from pathlib import Path

import pytest

from stb_origin import proc
from stb_origin.drm import keys
from stb_origin.drm.keys import ContentKey, generate_key
from stb_origin.envelope import Envelope, KekError, UnwrapError, load_kek
from stb_origin.settings import Settings

ASSET = "0123456789abcdef0123456789abcdef"


def test_generated_keys_are_random_and_never_shown() -> None:
    made = [generate_key() for _ in range(50)]
    assert len({k.key_id for k in made}) == 50
    assert len({k.key for k in made}) == 50
    for k in made:
        assert len(k.key) == 16
        assert k.key_id.isalnum() and len(k.key_id) == 16
        assert k.key.hex() not in repr(k) and repr(k.key) not in repr(k)


def test_content_key_checks_its_size() -> None:
    with pytest.raises(ValueError):
        ContentKey("k1", b"short")
    with pytest.raises(ValueError):
        ContentKey("a/b", bytes(16))
    with pytest.raises(ValueError):
        ContentKey("", bytes(16))


def test_envelope_round_trip() -> None:
    envelope = Envelope(os.urandom(32))
    ck = generate_key()
    blob = keys.wrap(envelope, ASSET, ck)
    assert blob[0] == 1 and len(blob) == 1 + 12 + 16 + 16
    assert ck.key not in blob
    assert keys.unwrap(envelope, ASSET, ck.key_id, blob) == ck.key
    assert keys.wrap(envelope, ASSET, ck) != blob, "fresh nonce per wrap"
    assert "kek" in repr(envelope) and "<hidden>" in repr(envelope)


def test_any_tampered_byte_fails() -> None:
    envelope = Envelope(os.urandom(32))
    ck = generate_key()
    blob = keys.wrap(envelope, ASSET, ck)
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(UnwrapError):
            keys.unwrap(envelope, ASSET, ck.key_id, bytes(tampered))
    with pytest.raises(UnwrapError):
        keys.unwrap(envelope, ASSET, ck.key_id, blob[:-1])
    with pytest.raises(UnwrapError):
        keys.unwrap(envelope, ASSET, ck.key_id, b"")


def test_a_wrapped_key_is_bound_to_its_asset_key_id_and_kek() -> None:
    envelope = Envelope(os.urandom(32))
    ck = generate_key()
    blob = keys.wrap(envelope, ASSET, ck)
    with pytest.raises(UnwrapError):
        keys.unwrap(envelope, "f" * 32, ck.key_id, blob)
    with pytest.raises(UnwrapError):
        keys.unwrap(envelope, ASSET, generate_key().key_id, blob)
    with pytest.raises(UnwrapError):
        keys.unwrap(Envelope(os.urandom(32)), ASSET, ck.key_id, blob)


def test_kek_must_be_32_bytes() -> None:
    with pytest.raises(KekError):
        Envelope(os.urandom(16))


def test_kek_from_settings(tmp_path: Path) -> None:
    kek = os.urandom(32)
    settings = Settings(data_dir=tmp_path, key_encryption_key=base64.b64encode(kek).decode())
    assert load_kek(settings) == kek
    assert not settings.secrets_dir.exists(), "no file when the setting is given"
    for bad in ("not base64!", base64.b64encode(os.urandom(16)).decode()):
        with pytest.raises(KekError, match="STB_KEY_ENCRYPTION_KEY"):
            load_kek(Settings(data_dir=tmp_path, key_encryption_key=bad))


def test_kek_file_is_made_once_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    kek = load_kek(settings)
    path = settings.secrets_dir / "kek"
    assert len(kek) == 32 and path.read_bytes() == kek
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.secrets_dir.stat().st_mode) == 0o700
    assert load_kek(settings) == kek
    assert [p.name for p in settings.secrets_dir.iterdir()] == ["kek"]


def test_unsafe_or_damaged_kek_file_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    load_kek(settings)
    path = settings.secrets_dir / "kek"
    path.chmod(0o644)
    with pytest.raises(KekError, match="chmod 600"):
        load_kek(settings)
    path.chmod(0o600)
    path.write_bytes(b"short")
    with pytest.raises(KekError, match="5 bytes"):
        load_kek(settings)


# The children print the KEK they loaded; all must agree with the one file.
_CHILD = """
import sys
from pathlib import Path
from stb_origin.envelope import load_kek
from stb_origin.settings import Settings
print(load_kek(Settings(data_dir=Path(sys.argv[1]))).hex())
"""


def test_processes_starting_together_agree_on_one_kek(tmp_path: Path) -> None:
    data = tmp_path / "data"
    logs = [tmp_path / f"child{i}.log" for i in range(4)]
    children = [proc.spawn([sys.executable, "-c", _CHILD, str(data)], log_path=log)
                for log in logs]
    try:
        codes = [child.wait(timeout=60) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert codes == [0, 0, 0, 0], [log.read_text() for log in logs]
    seen = {log.read_text().strip() for log in logs}
    assert seen == {(data / "secrets" / "kek").read_bytes().hex()}
