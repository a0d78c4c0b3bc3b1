"""Which targets a webhook may have: the URL's form, and every address it resolves to."""

from __future__ import annotations

import ipaddress

import pytest

from stb_origin.webhooks import targets
from stb_origin.webhooks.targets import BadTarget, Target

INSIDE = ["127.0.0.1", "127.5.5.5", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
          "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1",
          "::1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
          "::ffff:169.254.169.254", "2002:7f00:1::1", "64:ff9b::a00:1", "2001:db8::1"]
OUTSIDE = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8",
           "64:ff9b::808:808"]


@pytest.mark.parametrize("address", INSIDE)
def test_internal_addresses_are_refused(address: str) -> None:
    assert targets.refused(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", OUTSIDE)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not targets.refused(ipaddress.ip_address(address))


def test_a_url_is_split_into_what_the_sender_needs() -> None:
    assert targets.parse("https://hooks.example.com/in?x=1", False) == Target(
        "https", "hooks.example.com", 443, "/in?x=1")
    assert targets.parse("http://[::1]:8080", True) == Target("http", "::1", 8080, "/")


@pytest.mark.parametrize(("url", "words"), [
    (None, "expected a string"),
    (42, "expected a string"),
    ("http://example.com/", "scheme must be https"),
    ("ftp://example.com/", "scheme must be https"),
    ("file:///etc/passwd", "scheme must be https"),
    ("https://", "a host is required"),
    ("https:///path", "a host is required"),
    ("https://user:pw@example.com/", "no user or password"),
    ("https://example.com/#frag", "no fragment"),
    ("https://example.com:99999/", "not a valid URL"),
    ("https://exa mple.com/", "printable ASCII"),
    ("https://example.com/\n", "printable ASCII"),
    ("https://ex\u00e4mple.com/", "printable ASCII"),
    ("https://example.com/" + "a" * 3000, "at most 2048"),
])
def test_bad_urls_are_refused_with_a_reason(url: object, words: str) -> None:
    with pytest.raises(BadTarget, match=words):
        targets.parse(url, allow_http=False)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]",
                                  "10.0.0.1", "169.254.169.254", "2130706433", "0x7f.1"])
def test_a_host_resolving_inside_is_refused_unless_allowed(host: str) -> None:
    target = targets.parse(f"https://{host}/hook", allow_http=False)
    with pytest.raises(BadTarget, match="resolves to a private"):
        targets.resolve(target, allow_private=False)
    assert targets.resolve(target, allow_private=True)


def test_a_name_that_does_not_resolve_is_refused() -> None:
    target = targets.parse("https://no-such-host.invalid/hook", allow_http=False)
    with pytest.raises(BadTarget, match="does not resolve"):
        targets.resolve(target, allow_private=True)
