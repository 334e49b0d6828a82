"""music node: plays the local music library to the robot's speaker sink.

Commands arrive on music/command (std_msgs/String JSON {"command" or "action", "query"},
sent by the devices node or the dialogue node's music tools). The music ducks while the
robot listens or speaks (turn/state, audio/playback) and is mixed with speech by the
sound server: it opens its own output stream on the same device/sink as the speaker node.
"""

from __future__ import annotations

import json

from rcl_interfaces.msg import ParameterDescriptor
from std_msgs.msg import String

from gamgin_common import qos
from gamgin_common.paths import data_dir
from gamgin_common.stage import StageError, StageNode, run_stage
from gamgin_devices.music import MusicLibrary, MusicPlayer
from gamgin_interfaces.msg import TurnState


class MusicNode(StageNode):
    def __init__(self) -> None:
        super().__init__("music")
        p = self.declare_parameter
        self.library_dir = str(p("library_dir", "").value)
        self.device = str(p("device", "").value)
        self.pulse_sink = str(p("pulse_sink", "").value)
        self.sample_rate = int(p("sample_rate", 48000).value)
        self.block_ms = int(p("block_ms", 20).value)
        # seconds buffered in the device: sounddevice's default ("high") is 40 ms on the
        # pulse plugin, which a loaded CPU lets run dry block after block (see the speaker)
        self.latency = p("latency", "0.08", ParameterDescriptor(dynamic_typing=True)).value
        self.volume = float(p("volume", 0.8).value)
        self.duck_gain = float(p("duck_gain", 0.2).value)
        self.command_topic = str(p("command_topic", "music/command").value)
        self.player: MusicPlayer | None = None
        self._stream = None
        self._listening = self._speaking = False

    def configure_stage(self) -> None:
        from gamgin_audio import devices

        try:
            self._latency = devices.latency(self.latency)
        except ValueError as exc:
            raise StageError(f"bad parameter: {exc}; fix config/devices_params.yaml") from exc
        folder = self.library_dir or str(data_dir() / "music")
        library = MusicLibrary(folder)
        if not library.tracks:
            # not fatal: the node serves and says so; a rescan happens on every "play"
            self.health.warn(f"no music in {library.folder} (wav/flac/ogg/mp3; set library_dir)")
        self.health.value("library", str(library.folder))
        self.health.value("tracks", len(library.tracks))
        self.player = MusicPlayer(library, self.sample_rate, self.volume, self.duck_gain)
        self.state_pub = self.stage_publisher(String, "music/state", qos.STATE)
        self.stage_subscription(String, self.command_topic, self._on_command, qos.EVENTS)
        self.stage_subscription(TurnState, "turn/state", self._on_turn_state, qos.STATE)
        self.stage_subscription(TurnState, "audio/playback", self._on_playback, qos.EVENTS)

    def activate_stage(self) -> None:
        import sounddevice as sd

        from gamgin_audio import alsa, devices

        alsa.report_to(self, "underrun")  # xrun lines counted, not printed per block
        dev = devices.select(self.device, self.pulse_sink, "output")
        try:
            self._stream = sd.OutputStream(
                samplerate=self.sample_rate, channels=1, dtype="float32",
                blocksize=self.sample_rate * self.block_ms // 1000, device=dev,
                callback=self._on_device, latency=self._latency)
            self._stream.start()
        except Exception as exc:
            self._stream = None
            raise StageError(f"cannot open music output {dev!r}: {exc}. "
                             f"Devices: {devices.describe_devices()}") from exc
        self.health.value("latency_ms", round(float(self._stream.latency) * 1000))
        if self.player.library.tracks:
            self.health.ok(f"{len(self.player.library.tracks)} tracks; output {dev or 'default'}")
        self._publish_state("ready")

    def deactivate_stage(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def cleanup_stage(self) -> None:
        if self.player is not None:
            self.player.close()
            self.player = None

    # ------------------------------------------------------------------ inputs
    def _on_command(self, msg: String) -> None:
        try:
            data = json.loads(msg.data)
            # "command" from the devices node, "action" from gamgin_llm's music tools
            cmd = str(data["command"] if "command" in data else data["action"])
            query = str(data.get("query", ""))
            if cmd == "play":
                self.player.library.rescan()
                self.health.value("tracks", len(self.player.library.tracks))
            status = self.player.command(cmd, query)
        except (ValueError, KeyError, TypeError) as exc:
            self.health.count("bad_commands")
            self.get_logger().warning(f"bad music command {msg.data!r}: {exc}")
            return
        self.health.count("commands")
        self.get_logger().info(f"music {cmd} {query!r}: {status}")
        self._publish_state(status)

    def _on_turn_state(self, msg: TurnState) -> None:
        self._listening = msg.state in (TurnState.LISTENING, TurnState.THINKING)
        self._duck()

    def _on_playback(self, msg: TurnState) -> None:
        self._speaking = msg.state == TurnState.SPEAKING
        self._duck()

    def _duck(self) -> None:
        if self.player is not None:
            self.player.duck(self._listening or self._speaking)
            self.health.value("ducked", self._listening or self._speaking)

    def _on_device(self, outdata, frames: int, time_info, status) -> None:
        if status.output_underflow:
            self.health.count("underflows")
        outdata[:, 0] = self.player.read(frames) if self.player else 0.0

    def _publish_state(self, status: str) -> None:
        cur = self.player.current if self.player else None
        self.state_pub.publish(String(data=json.dumps({
            "state": self.player.state if self.player else "stopped", "status": status,
            "title": cur.title if cur else "", "artist": cur.artist if cur else ""},
            ensure_ascii=False)))


def main(args: list[str] | None = None) -> None:
    run_stage(MusicNode, args)


if __name__ == "__main__":
    main()
