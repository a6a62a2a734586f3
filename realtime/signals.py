"""Signal receivers: session-bound sockets (filled in by the gateway)."""
