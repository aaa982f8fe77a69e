"""Contract tests: the real client against the real local server on loopback."""
