"""The ``ciba_stack_delivery`` extension of the bc-authorize answer (README): whether the request
reached an enrolled device, so a consumption device can tell a person with no app what to do."""

from __future__ import annotations

from server.notify import modes


def test_a_user_without_a_device_is_reached_only_through_the_console(bc_authorize, alice):
    response = bc_authorize()
    assert response.status_code == 200
    assert response.json["ciba_stack_delivery"] == "console"


def test_a_user_with_a_device_is_reached_on_it(bc_authorize, phone):
    assert bc_authorize().json["ciba_stack_delivery"] == "device"


def test_a_user_who_chose_the_console_channel_is_told_so(bc_authorize, provider, phone):
    modes.set_mode(provider, "alice", "console")
    assert bc_authorize().json["ciba_stack_delivery"] == "console"


def test_the_operator_can_leave_it_out(bc_authorize, provider, alice):
    provider.settings.report_delivery = False
    body = bc_authorize().json
    assert "ciba_stack_delivery" not in body and body["auth_req_id"]
