"""Plain-Python domain: incidents, SLA clocks and actions. No Textual, no SQL."""
