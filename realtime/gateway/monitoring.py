"""
`GET /metrics`: the Prometheus exposition of every process of this machine.
Staff may read it (by session, or by their REST token), and so may the
addresses the operator lists (REALTIME_METRICS_ALLOWED_NETWORKS, loopback by
default); everyone else gets 403. Behind a proxy, run daphne with
`--proxy-headers` (or block /metrics at the proxy, as the nginx template
does), or every request would look local.
"""

from ipaddress import ip_address, ip_network

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden

from realtime.gateway import metrics


def from_allowed_network(request) -> bool:
    try:
        address = ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ip_network(network, strict=False)
        for network in settings.REALTIME["METRICS_ALLOWED_NETWORKS"]
    )


def staff_token_user(request):
    """The staff user of an `Authorization: Token <key>` header (Django REST framework's)."""
    try:
        from rest_framework.authentication import TokenAuthentication
        from rest_framework.exceptions import AuthenticationFailed
    except ImportError:
        return None
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return found[0] if found and found[0].is_staff else None


def may_read_metrics(request) -> bool:
    if from_allowed_network(request):
        return True
    if request.user.is_authenticated and request.user.is_staff:
        return True
    return staff_token_user(request) is not None


async def metrics_view(request):
    if not await sync_to_async(may_read_metrics)(request):
        return HttpResponseForbidden("Metrics are for the operator.")
    body = await sync_to_async(metrics.exposition)()
    return HttpResponse(body, content_type=metrics.CONTENT_TYPE)
