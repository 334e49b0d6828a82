"""Shared pieces of every gamgin node: stage base, QoS, health, PCM audio, test helpers."""
