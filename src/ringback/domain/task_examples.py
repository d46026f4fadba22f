"""Realistic request bodies of the task models, shown as examples in the OpenAPI document
(a test feeds each through its model and the live API)."""

from __future__ import annotations

from pydantic import JsonValue

MSG_CALL_EXAMPLES: list[JsonValue] = [
    {
        "type": "msg_call",
        "data": {
            "calling_number": "+33900000000",
            "called_number": "+33612345678",
            "audio_file": "audio/hello.wav",
        },
        "options": {
            "attempts": 3,
            "backoff": {"type": "exponential", "delay": 60000, "jitter": 0.2},
        },
    }
]

IVR_CALL_EXAMPLES: list[JsonValue] = [
    {
        "type": "ivr_call",
        "data": {
            "calling_number": "+33900000000",
            "called_number": "+33612345678",
            "ivr_xml": {
                "type": "inline",
                "data": "<IVR><Speak>Your order has shipped.</Speak><Hangup/></IVR>",
            },
        },
        "options": {"attempts": 2, "delay": 5000, "timezone": "Europe/Paris"},
    },
    {
        "type": "ivr_call",
        "data": {
            "calling_number": "+33900000000",
            "called_number": "+33612345678",
            "ivr_xml": {
                "type": "url",
                "data": "https://ivr.example.com/menu,https://backup.example.com/menu",
            },
        },
        "options": {
            "webhooks": [
                {
                    "url": "https://hooks.example.com/ringback",
                    "events": ["task.finished"],
                }
            ]
        },
    },
]

CALLBACK_TASK_EXAMPLES: list[JsonValue] = [
    {
        "name": "order-1042",
        "a_number": "+33612345678",
        "b_number": "+33198765432",
        "try_count": 3,
        "try_again_pause": 120,
        "start_time_utc": "2030-05-01 07:30:00",
        "url_after": "https://crm.example.com/hooks/callback-done",
        "callback_params": {"caller_id_number": "+33900000000", "caller_id_name": "Example Shop"},
        "variables": {"order": "1042"},
        "timezone": "Europe/Paris",
    }
]
