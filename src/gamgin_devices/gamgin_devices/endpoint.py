"""End-of-turn hint for the STT node: is this transcript a complete device command?

Plugged into gamgin_stt by dotted name (``complete_utterance:
"gamgin_devices.endpoint:CommandComplete"`` in config/stt.yaml). When the speculative
final (decoded after ~0.1 s of silence) already matches a device intent in full, the STT
ends the turn after ``early_end_ms`` of silence instead of the whole hang-over, which is
most of what a device command waits for. Matching only, no state, no action: the LLM
node's fast path still decides and acts on the final transcript. Pure Python, no rclpy.
"""

from __future__ import annotations

from gamgin_devices.intents import DeviceIntents


class CommandComplete:
    def __init__(self, registry_file: str = "") -> None:
        self.intents = DeviceIntents(registry_file or None)

    def __call__(self, text: str, lang: str) -> bool:
        return self.intents.handle(text, lang, state={}, dry=True) is not None
