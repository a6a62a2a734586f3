"""
One DRF exception handler for the whole API: the gateway's refusals
(`RealtimeError`, with PROTOCOL.md's error codes) and Django's model
validation become the REST answers PROTOCOL.md gives them.

A view names the request field a 400 concerns per error code in
`error_fields` (`{"invalid": "text"}`); the default is `non_field_errors`.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.views import exception_handler

from realtime.gateway.errors import RealtimeError

STATUS_OF_CODE = {
    "bad_message": status.HTTP_400_BAD_REQUEST,
    "unknown_topic": status.HTTP_400_BAD_REQUEST,
    "invalid": status.HTTP_400_BAD_REQUEST,
    "too_many_subscriptions": status.HTTP_400_BAD_REQUEST,
    "forbidden": status.HTTP_403_FORBIDDEN,
    "not_found": status.HTTP_404_NOT_FOUND,
    "rate_limited": status.HTTP_429_TOO_MANY_REQUESTS,
    "unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,
}


class RealtimeRefusal(exceptions.APIException):
    """A gateway refusal without a more specific DRF exception."""

    def __init__(self, error: RealtimeError):
        super().__init__(detail=error.message, code=error.code)
        self.status_code = STATUS_OF_CODE.get(error.code, status.HTTP_500_INTERNAL_SERVER_ERROR)


def api_exception(exc: Exception, view) -> Exception:
    """The DRF exception that answers `exc` (itself when it is not ours)."""
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError(exc.message_dict)
        return exceptions.ValidationError({"non_field_errors": exc.messages})
    if not isinstance(exc, RealtimeError):
        return exc
    answer = STATUS_OF_CODE.get(exc.code)
    if answer == status.HTTP_400_BAD_REQUEST:
        field = getattr(view, "error_fields", {}).get(exc.code, "non_field_errors")
        return exceptions.ValidationError({field: [exc.message]})
    if answer == status.HTTP_403_FORBIDDEN:
        return exceptions.PermissionDenied(exc.message)
    if answer == status.HTTP_404_NOT_FOUND:
        return exceptions.NotFound(exc.message)
    return RealtimeRefusal(exc)


def realtime_exception_handler(exc: Exception, context: dict):
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: ours first, then DRF's own."""
    return exception_handler(api_exception(exc, context.get("view")), context)
