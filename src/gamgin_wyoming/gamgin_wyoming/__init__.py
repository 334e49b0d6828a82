"""gamgin over the Wyoming protocol: its stages as Home Assistant voice services."""
