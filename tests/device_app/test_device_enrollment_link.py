"""docs/device-protocol.md §1: both forms of the enrollment URI."""

import pytest

from device_app.core.enrollment import EnrollmentLinkError, parse_enrollment_uri


@pytest.mark.parametrize("text, base, code", [
    ("ciba-enroll://enroll?base=https%3A%2F%2Fop.example.com&code=abc_-123",
     "https://op.example.com", "abc_-123"),
    ("ciba-enroll://enroll?base=http%3A%2F%2F127.0.0.1%3A5000%2Fop%2F&code=xyz",
     "http://127.0.0.1:5000/op", "xyz"),
    ("  https://op.example.com/device/enroll?code=c0de  ", "https://op.example.com", "c0de"),
    ("https://example.com/tenant/a/device/enroll?code=c", "https://example.com/tenant/a", "c"),
    ("http://127.0.0.1:8000/device/enroll/?code=c", "http://127.0.0.1:8000", "c"),
])
def test_parses_both_forms(text, base, code):
    link = parse_enrollment_uri(text)
    assert (link.base_url, link.code) == (base, code)


@pytest.mark.parametrize("text", [
    "",
    "hello",
    "ciba-enroll://enroll?code=abc",                       # no base
    "ciba-enroll://enroll?base=https%3A%2F%2Fop.example.com",  # no code
    "ciba-enroll://enroll?base=ftp%3A%2F%2Fop&code=abc",    # not http(s)
    "https://op.example.com/login?code=abc",               # not the enroll path
    "https://op.example.com/device/enroll",                # no code
])
def test_rejects_what_is_not_an_enrollment_link(text):
    with pytest.raises(EnrollmentLinkError):
        parse_enrollment_uri(text)
