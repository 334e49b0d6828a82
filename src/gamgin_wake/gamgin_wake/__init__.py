"""gamgin_wake: the wake-word stage (few-shot offline detector, Porcupine, pinyin check)."""
