"""What the RViz speech bubble says: the user's words and the robot's reply of the
current turn, wrapped to a width. Pure Python."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


def display_width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def wrap(text: str, width: int) -> list[str]:
    """Wrap by display width (a CJK character is two columns); English breaks at spaces."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        line, col = "", 0
        for word in _words(para):
            w = sum(display_width(c) for c in word)
            if col + w > width and line.strip():
                lines.append(line.rstrip())
                line, col = word.lstrip(), sum(display_width(c) for c in word.lstrip())
            else:
                line, col = line + word, col + w
        lines.append(line.rstrip())
    return lines


def _words(text: str) -> list[str]:
    """Split into breakable pieces: each CJK character alone, Latin words with their space."""
    out: list[str] = []
    cur = ""
    for ch in text:
        if display_width(ch) == 2:
            if cur:
                out.append(cur)
                cur = ""
            out.append(ch)
        elif ch == " ":
            out.append(cur + ch)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


@dataclass
class SpeechBubble:
    width: int = 40
    max_lines: int = 8
    turn_id: int = 0
    heard: str = ""
    saying: str = ""

    def _turn(self, turn_id: int) -> bool:
        if turn_id < self.turn_id:
            return False  # a late message of an older turn
        if turn_id > self.turn_id:
            self.turn_id, self.heard, self.saying = turn_id, "", ""
        return True

    def on_transcript(self, turn_id: int, text: str) -> bool:
        if not self._turn(turn_id):
            return False
        self.heard = text.strip()
        return True

    def on_tokens(self, turn_id: int, text: str) -> bool:
        if not self._turn(turn_id):
            return False
        self.saying += text
        return True

    def text(self) -> str:
        lines: list[str] = []
        if self.heard:
            lines += wrap(f"› {self.heard}", self.width)
        if self.saying.strip():
            said = wrap(f"金坚: {self.saying.strip()}", self.width)
            # keep the newest words of a long answer visible
            room = max(1, self.max_lines - len(lines))
            lines += said[-room:] if len(said) > room else said
        return "\n".join(lines[-self.max_lines:])
