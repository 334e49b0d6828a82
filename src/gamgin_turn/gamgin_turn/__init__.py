"""Turn orchestration: turn/state, interrupts, per-turn trace."""
