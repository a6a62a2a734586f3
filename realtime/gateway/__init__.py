"""
The gateway: everything a Django project needs for real-time, and nothing
about chat. Protocol and errors, the registry of topic families, `publish()`,
history and recovery, the consumer, the hub with its offset ordering, the
transport adapter over daphne, control of sockets anywhere, the connection
registry, presence, rate limits and graceful shutdown.

It never imports `realtime.chat` (a contract checked in `make test`).
"""
