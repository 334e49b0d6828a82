"""gamgin bringup: one graph description, the supervisor behind `gamgin up`, the CLI."""
