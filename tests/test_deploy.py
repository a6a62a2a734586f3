"""deploy/: nginx carries WebSockets through to every daphne upstream on unix sockets."""

import asyncio
import shutil
import tempfile
from pathlib import Path

from deploy.cluster import Cluster, check
from tests.conftest import need_service
from tests.live import free_port


async def test_nginx_carries_websockets_to_both_upstreams(
    live_database, require_redis, redis_prefix
):
    need_service(shutil.which("nginx") is not None, "nginx not installed")
    username = "deploy-check"
    live_database.create_user(username, "deploy-pass-123", staff=True)
    env = live_database.env(REDIS_URL=require_redis, REALTIME_REDIS_PREFIX=redis_prefix)
    env["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    # Not pytest's tmp_path: nginx's workers (another user) must reach the sockets.
    workdir = Path(tempfile.mkdtemp(prefix="realtime-cluster-test-"))
    cluster = Cluster(processes=2, port=free_port(), env=env, workdir=workdir)
    try:
        await asyncio.to_thread(cluster.start)
        servers = await check(cluster, username, "deploy-pass-123")
        assert len(servers) == 2
        assert all(count >= 1 for count in servers.values())
    finally:
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(workdir, ignore_errors=True)
