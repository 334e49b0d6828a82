"""Wake detectors behind ``gamgin_wake.core.WakeBackend``, chosen by the ``backend`` parameter."""

BACKENDS = ("trained", "fewshot", "porcupine")
