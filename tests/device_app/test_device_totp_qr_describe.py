"""User codes (TOTP), QR decoding with zxing-cpp, and plain words for scopes and details."""

import pyotp
import pytest
import qrcode

from device_app.core.describe import details_lines, scope_lines
from device_app.core.qr import NoQRCode, decode_file
from device_app.core.totp import current_code

SECRET = "GC4KDBMYUY5BIFPRE3FIMDYGBRIQEBOR"


@pytest.mark.parametrize("now, left", [(1_800_000_000, 30), (1_800_000_001, 29), (1_800_000_029, 1)])
def test_totp_code_and_seconds_left(now, left):
    code = current_code({"secret": SECRET, "digits": 6, "period": 30, "algorithm": "SHA1"}, now)
    assert code.code == pyotp.TOTP(SECRET).at(now)
    assert code.seconds_left == left and code.period == 30


def test_qr_image_round_trip(tmp_path):
    text = "ciba-enroll://enroll?base=http%3A%2F%2F127.0.0.1%3A5000&code=abc"
    path = tmp_path / "qr.png"
    qrcode.make(text).save(path)
    assert decode_file(path) == text


def test_qr_errors(tmp_path):
    blank = tmp_path / "blank.png"
    from PIL import Image
    Image.new("RGB", (100, 100), "white").save(blank)
    with pytest.raises(NoQRCode):
        decode_file(blank)
    (tmp_path / "not-an-image.png").write_text("hello")
    with pytest.raises(NoQRCode):
        decode_file(tmp_path / "not-an-image.png")


def test_scope_lines_prefer_the_providers_words():
    assert scope_lines([{"scope": "openid", "description": "Who you are"}, {"scope": "email"},
                        "phone", {"scope": "x-custom"}]) == [
        "Who you are", "Your email address", "Your phone number", "x-custom"]


def test_details_lines_spell_out_a_payment():
    lines = details_lines([{"type": "payment_initiation",
                            "instructedAmount": {"currency": "EUR", "amount": "123.50"},
                            "creditorName": "Merchant A", "creditorAccount": {"iban": "DE02100100109307118603"}},
                           {"type": "account_information", "actions": ["read"]}])
    assert lines[0] == "Pay 123.50 EUR to Merchant A (DE02100100109307118603)"
    assert lines[1] == "Account information — actions: read"
    assert details_lines(None) == []
