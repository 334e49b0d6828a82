"""Microphone and speaker nodes (sounddevice/PortAudio)."""
