"""Signed playback URLs: the format, expiry, prefix, forgery and secret rotation."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from stb_origin.origin.urlsign import BadSignature, UrlSigner

ASSET = "0123456789abcdef0123456789abcdef"
OTHER = "f" * 32
NOW = 1_900_000_000
SIGNER = UrlSigner(("current", "previous"))


def _split(url: str) -> tuple[str, str]:
    """The token segment and the path after it."""
    token, _, rest = url.removeprefix("/hls/").partition("/")
    return token, rest


def test_the_documented_format() -> None:
    url = SIGNER.sign(f"/hls/{ASSET}/master.h720.m3u8", NOW + 60)
    mac = hmac.new(b"current", f"exp={NOW + 60}~acl={ASSET}".encode(), hashlib.sha256)
    assert url == (f"/hls/st=exp={NOW + 60}~acl={ASSET}~hmac={mac.hexdigest()}"
                   f"/{ASSET}/master.h720.m3u8")


def test_a_token_opens_every_path_of_its_asset_until_it_expires() -> None:
    token, _ = _split(SIGNER.sign(f"/hls/{ASSET}/master.m3u8", NOW + 60))
    for rest in (f"{ASSET}/master.m3u8", f"{ASSET}/v1/720p/index.m3u8",
                 f"{ASSET}/v1/720p/seg_00001.m4s"):
        SIGNER.verify(token, rest, now=NOW + 59.9)
    with pytest.raises(BadSignature) as expired:
        SIGNER.verify(token, f"{ASSET}/master.m3u8", now=NOW + 60)
    assert expired.value.reason == "expired"


@pytest.mark.parametrize("rest", [f"{OTHER}/master.m3u8", f"{ASSET}x/master.m3u8",
                                  f"{ASSET}", "master.m3u8"])
def test_a_token_opens_nothing_outside_its_prefix(rest: str) -> None:
    token, _ = _split(SIGNER.sign(f"/hls/{ASSET}/master.m3u8", NOW + 60))
    with pytest.raises(BadSignature) as refused:
        SIGNER.verify(token, rest, now=NOW)
    assert refused.value.reason == "wrong_prefix"


def test_forged_tokens_are_refused() -> None:
    token, rest = _split(SIGNER.sign(f"/hls/{ASSET}/master.m3u8", NOW + 60))
    stranger = UrlSigner(("someone-else",))
    later = token.replace(f"exp={NOW + 60}", f"exp={NOW + 6000}")
    other_acl, _ = _split(SIGNER.sign(f"/hls/{OTHER}/master.m3u8", NOW + 60))
    swapped = other_acl.replace(OTHER, ASSET)  # the hmac of another asset
    for forged in (_split(stranger.sign(f"/hls/{ASSET}/master.m3u8", NOW + 60))[0],
                   later, swapped, token[:-1] + ("0" if token[-1] != "0" else "1")):
        with pytest.raises(BadSignature) as refused:
            SIGNER.verify(forged, rest, now=NOW)
        assert refused.value.reason == "forged"


@pytest.mark.parametrize("token", [
    "", "st=", "st=exp=1~acl=a", f"st=exp=x~acl={ASSET}~hmac={'0' * 64}",
    f"st=acl={ASSET}~exp=1~hmac={'0' * 64}", f"st=exp=1~acl={ASSET}~hmac={'0' * 63}",
    f"st=exp=1~acl={ASSET}~hmac={'A' * 64}", f"xx=exp=1~acl={ASSET}~hmac={'0' * 64}",
])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(BadSignature) as refused:
        SIGNER.verify(token, f"{ASSET}/master.m3u8", now=0)
    assert refused.value.reason == "malformed"


def test_rotation_the_first_secret_signs_and_every_one_verifies() -> None:
    old = UrlSigner(("previous",))
    token, rest = _split(old.sign(f"/hls/{ASSET}/master.m3u8", NOW + 60))
    SIGNER.verify(token, rest, now=NOW)  # still accepted while rotating
    mine, _ = _split(SIGNER.sign(f"/hls/{ASSET}/master.m3u8", NOW + 60))
    with pytest.raises(BadSignature):
        old.verify(mine, rest, now=NOW)  # signed with the new one
    with pytest.raises(BadSignature):
        UrlSigner(("current",)).verify(token, rest, now=NOW)  # once "previous" is retired


def test_signing_needs_a_secret_and_an_hls_path() -> None:
    assert not UrlSigner(()).enabled
    with pytest.raises(ValueError):
        UrlSigner(()).sign(f"/hls/{ASSET}/master.m3u8", NOW)
    with pytest.raises(ValueError):
        UrlSigner(("",))
    with pytest.raises(ValueError):
        SIGNER.sign(f"/keys/{ASSET}/k0", NOW)
    with pytest.raises(ValueError):
        SIGNER.sign("/hls/bad~acl/master.m3u8", NOW)
