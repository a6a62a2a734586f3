"""Who may call what: the REST half of PROTOCOL.md's access rules."""

from rest_framework.permissions import BasePermission

from realtime.chat.selectors import room_manageable_by


class IsStaff(BasePermission):
    """Signed-in staff only (by session or by token); everyone else gets 403."""

    message = "Staff only."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


class IsRoomOwnerOrStaff(BasePermission):
    """Only the room's owner or staff may manage its members."""

    message = "Only the room's owner or staff may add members."

    def has_object_permission(self, request, view, obj) -> bool:
        return room_manageable_by(obj, request.user)
