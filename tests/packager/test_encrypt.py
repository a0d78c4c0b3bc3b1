from __future__ import annotations

import os
from pathlib import Path

import pytest

from stb_origin import proc
from stb_origin.packager.encrypt import CHUNK, encrypt_file
from tests.packager import support

KEY = bytes(range(16))
IV = bytes(range(16, 32))
SIZES = [0, 1, 15, 16, 17, CHUNK - 1, CHUNK, CHUNK + 3, 2 * CHUNK]


@pytest.mark.parametrize("size", SIZES)
def test_matches_openssl_and_the_padder_reference(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    src, dst, ref = tmp_path / "clear", tmp_path / "enc", tmp_path / "openssl"
    src.write_bytes(data)

    written = encrypt_file(src, dst, KEY, IV)

    proc.run(["openssl", "enc", "-aes-128-cbc", "-K", KEY.hex(), "-iv", IV.hex(),
              "-in", str(src), "-out", str(ref)], timeout=30)
    encrypted = dst.read_bytes()
    assert encrypted == ref.read_bytes()
    assert encrypted == support.reference_encrypt(data, KEY, IV)
    # PKCS#7 always pads: 1 to 16 bytes, a whole block when already aligned.
    assert written == len(encrypted) == (size // 16 + 1) * 16
    assert support.decrypt(encrypted, KEY, IV) == data


def test_rejects_wrong_key_or_iv_sizes(tmp_path: Path) -> None:
    src = tmp_path / "clear"
    src.write_bytes(b"x")
    with pytest.raises(ValueError):
        encrypt_file(src, tmp_path / "enc", KEY[:15], IV)
    with pytest.raises(ValueError):
        encrypt_file(src, tmp_path / "enc", KEY, IV + b"\x00")
