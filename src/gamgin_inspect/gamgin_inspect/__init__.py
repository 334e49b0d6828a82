"""Inspection: Foxglove bridge, RViz speech bubble."""
