"""Whatever body and boundary an upload arrives with: a clear answer, never a 500,
and nothing left in the upload folder."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stb_origin.services import Services

MP4_HEAD = b"\x00\x00\x00\x20ftypisom" + b"\x00" * 64
# What h11 sends in a header value: printable ASCII, no leading or trailing space.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=80)
BOUNDARY = st.one_of(st.sampled_from(["B", "----x", "a" * 70, "a" * 200]), HEADER_TEXT)
NAME = st.sampled_from(["file", "title", "packages", "package", "", 'fi"le']) | HEADER_TEXT
PART_BODY = st.one_of(st.binary(max_size=300), st.just(MP4_HEAD),
                      st.binary(max_size=100).map(lambda b: MP4_HEAD + b))


@st.composite
def multipart(draw: st.DrawFn) -> tuple[str, bytes]:
    """A body that is multipart-shaped, then perhaps garbled: cut, spliced, or a
    boundary that does not match the header's."""
    boundary = draw(BOUNDARY)
    used = draw(st.sampled_from([boundary, boundary + "x", boundary[:-1]]))
    parts = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        filename = draw(st.none() | HEADER_TEXT)
        disposition = f'form-data; name="{draw(NAME)}"' + (
            f'; filename="{filename}"' if filename is not None else "")
        headers = draw(st.sampled_from([f"Content-Disposition: {disposition}\r\n",
                                        "", f"Content-Disposition:{disposition}\n",
                                        f"X-{draw(HEADER_TEXT)}\r\n"]))
        parts.append(f"--{used}\r\n{headers}\r\n".encode() + draw(PART_BODY) + b"\r\n")
    body = b"".join(parts) + draw(st.sampled_from([f"--{used}--\r\n".encode(), b""]))
    cut = draw(st.integers(min_value=0, max_value=len(body)))
    body = draw(st.sampled_from([body, body[:cut], body[:cut] + draw(st.binary(max_size=50))]))
    return boundary, body


CONTENT_TYPE = st.one_of(
    BOUNDARY.map(lambda b: f"multipart/form-data; boundary={b}"),
    BOUNDARY.map(lambda b: f'multipart/form-data; boundary="{b}"'),
    HEADER_TEXT,
    st.just("multipart/form-data"), st.just("multipart/form-data; boundary="),
)


def _check(api: str, services: Services, token: str, content_type: str, body: bytes) -> None:
    response = httpx.post(f"{api}/v1/assets", content=body, timeout=30,
                          headers={"Authorization": f"Bearer {token}",
                                   "Content-Type": content_type})
    assert response.status_code in (202, 400, 413, 415), response.text
    if response.status_code != 202:
        error = response.json()["error"]
        assert error["code"] and error["message"]
    uploads = services.settings.work_dir / "uploads"
    assert not uploads.exists() or not list(uploads.iterdir())


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=multipart())
def test_a_garbled_multipart_body_gets_a_clear_answer_and_leaves_nothing(api, services, case):
    boundary, body = case
    token = services.signer.issue(["assets:write"])
    _check(api, services, token, f"multipart/form-data; boundary={boundary}", body)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content_type=CONTENT_TYPE, body=st.binary(max_size=400))
def test_any_body_under_any_content_type_gets_a_clear_answer(api, services, content_type,
                                                             body):
    token = services.signer.issue(["assets:write"])
    _check(api, services, token, content_type, body)
