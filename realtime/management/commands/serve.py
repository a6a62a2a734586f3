"""
`manage.py serve`: daphne with a graceful restart.

Plain daphne, on SIGTERM, cancels every consumer without a close frame
(clients see 1006) and exits at once. Here SIGTERM or SIGINT first stops
accepting connections, closes every socket with 4012 ("server restarting";
clients come back after a random 0 to 5 s), lets each run its disconnect logic
(presence leave, registry removal), and exits within `--grace` seconds.
"""

import logging
import os

from django.conf import settings
from django.core.management.base import BaseCommand

from realtime.gateway import metrics
from realtime.gateway.shutdown import GracefulShutdown, install_once
from realtime.gateway.transport import limit_header_time, log_capabilities

logger = logging.getLogger("realtime.serve")
CLOSE_TIMEOUT = 30
LISTEN_BACKLOG = 1024


class Command(BaseCommand):
    help = "Serve the site (HTTP and WebSockets) under daphne, with a graceful restart."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--unix-socket", help="listen on this unix socket instead")
        parser.add_argument(
            "--ping-interval",
            type=int,
            default=settings.REALTIME["PING_INTERVAL_SECONDS"],
            help="seconds of silence before daphne sends a WebSocket protocol ping",
        )
        parser.add_argument(
            "--ping-timeout",
            type=int,
            default=settings.REALTIME["PING_TIMEOUT_SECONDS"],
            help="seconds without an answer to the ping before the socket is dropped",
        )
        parser.add_argument(
            "--grace", type=float, default=8.0, help="seconds sockets get to close on SIGTERM"
        )
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help="trust X-Forwarded-For / X-Forwarded-Port from a proxy in front",
        )

    def handle(self, *args, **options):
        # daphne.server installs Twisted's asyncio reactor: import it first.
        from daphne.endpoints import build_endpoint_description_strings
        from twisted.internet import reactor

        ListeningServer = listening_server_class()

        from config.asgi import application

        endpoints = [
            # Twisted listens with a backlog of 50: a burst of handshakes was reset.
            f"{endpoint}:backlog={LISTEN_BACKLOG}"
            for endpoint in build_endpoint_description_strings(
                host=None if options["unix_socket"] else options["bind"],
                port=None if options["unix_socket"] else options["port"],
                unix_socket=options["unix_socket"],
            )
        ]
        where = options["unix_socket"] or f"http://{options['bind']}:{options['port']}"
        max_bytes = settings.REALTIME["MAX_FRAME_BYTES"]
        server = ListeningServer(
            application=application,
            endpoints=endpoints,
            signal_handlers=False,
            ping_interval=options["ping_interval"],
            ping_timeout=options["ping_timeout"],
            # Sockets live as long as their session; no daphne-imposed lifetime.
            websocket_timeout=-1,
            # Frames up to 16x our limit reach the consumer, which closes with 4009;
            # beyond that autobahn refuses them before buffering more (1009).
            websocket_max_message_size=max_bytes * 16,
            websocket_max_frame_size=max_bytes * 16,
            application_close_timeout=options["grace"] + 2,
            proxy_forwarded_address_header="X-Forwarded-For" if options["proxy_headers"] else None,
            proxy_forwarded_port_header="X-Forwarded-Port" if options["proxy_headers"] else None,
            proxy_forwarded_proto_header="X-Forwarded-Proto" if options["proxy_headers"] else None,
            ready_callable=lambda: logger.info("Serving on %s (pid %d)", where, os.getpid()),
            verbosity=1,
        )
        log_capabilities()
        metrics.forget_dead_processes()
        shutdown = GracefulShutdown(
            grace=options["grace"],
            stop_listening=lambda: [port.stopListening() for port in server.ports],
            still_open=lambda: any(
                not connection.get("disconnected") for connection in server.connections.values()
            ),
        )
        reactor.callWhenRunning(install_once, shutdown)
        # A client gets this long to send a request's headers (no slow drip).
        reactor.callWhenRunning(
            lambda: limit_header_time(
                server.http_factory, reactor, settings.REALTIME["HEADER_TIMEOUT_SECONDS"]
            )
        )
        # A closing client (shed as too slow, or a restart) gets this long to
        # read its close frame before the connection is dropped (autobahn's
        # default is 1 s, which turns a slow reader's 4008 into 1006).
        reactor.callWhenRunning(
            lambda: server.ws_factory.setProtocolOptions(closeHandshakeTimeout=CLOSE_TIMEOUT)
        )
        server.run()


def listening_server_class():
    from daphne.server import Server

    class ListeningServer(Server):
        """daphne's Server, keeping its listening ports so they can be closed."""

        def listen_success(self, port):
            self.ports = [*getattr(self, "ports", []), port]
            return super().listen_success(port)

    return ListeningServer
