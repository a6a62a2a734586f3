"""The REST endpoints of PROTOCOL.md (section REST); decisions it left open are in docs/api.md."""

from django.contrib.auth import login, logout
from django.db import IntegrityError
from django.middleware.csrf import get_token
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound, Throttled, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime.chat import services
from realtime.chat.api.permissions import IsRoomOwnerOrStaff, IsStaff
from realtime.chat.api.serializers import (
    MESSAGES_MAX_LIMIT,
    AnnouncementSerializer,
    ConnectionSerializer,
    CsrfSerializer,
    DashboardSampleSerializer,
    DetailSerializer,
    LoginSerializer,
    MemberAddSerializer,
    MeSerializer,
    MessageCreateSerializer,
    MessageEditSerializer,
    MessagePageQuerySerializer,
    MessagePageSerializer,
    MessageSerializer,
    NotificationIdsSerializer,
    NotificationPageQuerySerializer,
    NotificationPageSerializer,
    NotificationSerializer,
    PublicationSerializer,
    PublishSerializer,
    RoomDetailSerializer,
    RoomListItemSerializer,
    RoomReadSerializer,
    RoomReadStateSerializer,
    RoomSerializer,
    RoomUpdateSerializer,
    UserBriefSerializer,
)
from realtime.chat.api.throttles import WriteThrottle
from realtime.chat.dashboard import dashboard_history
from realtime.chat.mentions import texts_users
from realtime.chat.models import SLUG_PATTERN, Announcement, Message, Notification, Room
from realtime.chat.selectors import (
    announcements_recent,
    room_last_offsets,
    room_unread_counts,
    room_visible,
    rooms_visible_to,
)
from realtime.gateway.control import connection_disconnect
from realtime.gateway.publishing import publish, publish_as
from realtime.gateway.registry import connections_list
from realtime.gateway.topics import parse_topic

ERRORS = {
    400: OpenApiResponse(description="Validation errors, keyed by field."),
    403: OpenApiResponse(
        DetailSerializer, description="Not signed in, not allowed, or no CSRF token."
    ),
    404: OpenApiResponse(DetailSerializer, description="No such object, or one you may not see."),
}
SLUG = OpenApiParameter(
    "slug", str, OpenApiParameter.PATH, description="The room's slug.", pattern=rf"^{SLUG_PATTERN}$"
)


def visible_room(request, slug: str) -> Room:
    """The room called `slug` if this user may see it; 404 alike for missing and hidden."""
    room = room_visible(user=request.user, slug=slug)
    if room is None:
        raise NotFound("No such room.")
    return room


@extend_schema(tags=["auth"])
@method_decorator(ensure_csrf_cookie, name="dispatch")
class CsrfView(APIView):
    """Set the `csrftoken` cookie (and return its value) for the unsafe requests to come."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: CsrfSerializer})
    def get(self, request):
        return Response({"csrf_token": get_token(request._request)})


@extend_schema(tags=["auth"])
class LoginView(APIView):
    """Start a session (`sessionid` cookie) from a username and password; CSRF enforced."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=LoginSerializer,
        responses={200: MeSerializer, 400: ERRORS[400], 403: ERRORS[403]},
    )
    def post(self, request):
        # DRF only checks CSRF for already authenticated sessions; a login form is
        # a target too (login CSRF), so check here for everyone.
        SessionAuthentication().enforce_csrf(request)
        serializer = LoginSerializer(data=request.data, context={"request": request._request})
        valid = serializer.is_valid()
        locked_for = getattr(request._request, "sign_in_locked_for", 0)
        if locked_for:
            raise Throttled(locked_for, "Too many failed sign-ins; try again later.")
        if not valid:
            raise ValidationError(serializer.errors)
        user = serializer.validated_data["user"]
        login(request._request, user)
        return Response(MeSerializer(user).data)


@extend_schema(tags=["auth"])
class LogoutView(APIView):
    """End the session (its sockets close with 4401); a harmless 200 when not signed in."""

    permission_classes = [AllowAny]

    @extend_schema(request=None, responses={200: DetailSerializer, 403: ERRORS[403]})
    def post(self, request):
        if request.user.is_authenticated:
            logout(request._request)
            return Response({"detail": "Signed out."})
        return Response({"detail": "Not signed in."})


@extend_schema(tags=["auth"])
class MeView(APIView):
    """The signed-in user."""

    @extend_schema(responses={200: MeSerializer, 403: ERRORS[403]})
    def get(self, request):
        return Response(MeSerializer(request.user).data)


@extend_schema(tags=["rooms"])
class RoomListView(APIView):
    """The rooms this user can see; create a room (the creator owns it and is a member)."""

    throttle_classes = [WriteThrottle]

    @extend_schema(responses={200: RoomListItemSerializer(many=True), 403: ERRORS[403]})
    def get(self, request):
        rooms = rooms_visible_to(request.user).select_related("owner")
        context = {
            "unread": room_unread_counts(request.user, rooms),
            "last_offsets": room_last_offsets(rooms),
        }
        return Response(RoomListItemSerializer(rooms, many=True, context=context).data)

    @extend_schema(
        request=RoomSerializer,
        responses={201: RoomDetailSerializer, 400: ERRORS[400], 403: ERRORS[403]},
    )
    def post(self, request):
        serializer = RoomSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            room = services.room_create(owner=request.user, **serializer.validated_data)
        except IntegrityError as exc:  # the same slug created concurrently
            raise ValidationError({"slug": ["A room with this slug already exists."]}) from exc
        return Response(RoomDetailSerializer(room).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["rooms"], parameters=[SLUG])
class RoomDetailView(APIView):
    """One room with its members (404 for a private room this user may not see); change or
    delete it (owner or staff)."""

    throttle_classes = [WriteThrottle]

    @extend_schema(responses={200: RoomDetailSerializer, 403: ERRORS[403], 404: ERRORS[404]})
    def get(self, request, slug: str):
        return Response(RoomDetailSerializer(visible_room(request, slug)).data)

    @extend_schema(
        request=RoomUpdateSerializer,
        responses={200: RoomDetailSerializer, 400: ERRORS[400], 403: ERRORS[403], 404: ERRORS[404]},
    )
    def patch(self, request, slug: str):
        room = visible_room(request, slug)
        serializer = RoomUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        room = services.room_update(room=room, actor=request.user, **serializer.validated_data)
        return Response(RoomDetailSerializer(room).data)

    @extend_schema(responses={204: None, 403: ERRORS[403], 404: ERRORS[404]})
    def delete(self, request, slug: str):
        services.room_delete(room=visible_room(request, slug), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["rooms"], parameters=[SLUG])
class RoomMemberView(APIView):
    """Add a member to a room (its owner or staff)."""

    throttle_classes = [WriteThrottle]
    permission_classes = [IsAuthenticated, IsRoomOwnerOrStaff]

    @extend_schema(
        request=MemberAddSerializer,
        responses={201: UserBriefSerializer, 400: ERRORS[400], 403: ERRORS[403], 404: ERRORS[404]},
    )
    def post(self, request, slug: str):
        room = visible_room(request, slug)
        self.check_object_permissions(request, room)
        serializer = MemberAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        member = serializer.validated_data["user"]
        services.room_member_add(room=room, actor=request.user, user=member)
        return Response(UserBriefSerializer(member).data, status=status.HTTP_201_CREATED)


@extend_schema(
    tags=["rooms"],
    parameters=[SLUG, OpenApiParameter("username", str, OpenApiParameter.PATH)],
)
class RoomMemberDetailView(APIView):
    """Remove a member (owner or staff; not the owner); their subscriptions end."""

    permission_classes = [IsAuthenticated, IsRoomOwnerOrStaff]
    throttle_classes = [WriteThrottle]
    error_fields = {"invalid": "username"}

    @extend_schema(responses={204: None, 400: ERRORS[400], 403: ERRORS[403], 404: ERRORS[404]})
    def delete(self, request, slug: str, username: str):
        room = visible_room(request, slug)
        self.check_object_permissions(request, room)
        member = room.members.filter(username=username).first()
        if member is None:
            raise NotFound("No such member.")
        services.room_member_remove(room=room, actor=request.user, user=member)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["rooms"], parameters=[SLUG])
class RoomMessagesView(APIView):
    """A room's history by offset, newest page first; post a message like a socket publish."""

    throttle_classes = [WriteThrottle]

    error_fields = {"invalid": "text"}

    @extend_schema(
        parameters=[MessagePageQuerySerializer],
        responses={
            200: MessagePageSerializer,
            400: ERRORS[400],
            403: ERRORS[403],
            404: ERRORS[404],
        },
    )
    def get(self, request, slug: str):
        room = visible_room(request, slug)
        query = MessagePageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit = min(query.validated_data["limit"], MESSAGES_MAX_LIMIT)
        messages = Message.objects.filter(room=room).select_related("author").order_by("-offset")
        if "before" in query.validated_data:
            messages = messages.filter(offset__lt=query.validated_data["before"])
        page = list(messages[: limit + 1])
        has_more = len(page) > limit
        page = page[:limit][::-1]
        known = texts_users(message.text for message in page)
        results = MessageSerializer(page, many=True, context={"known": known}).data
        return Response({"results": results, "has_more": has_more})

    @extend_schema(
        request=MessageCreateSerializer,
        responses={201: MessageSerializer, 400: ERRORS[400], 403: ERRORS[403], 404: ERRORS[404]},
    )
    def post(self, request, slug: str):
        room = visible_room(request, slug)
        serializer = MessageCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        publication = services.message_create(
            room=room, author=request.user, text=serializer.validated_data["text"]
        )
        message = Message.objects.select_related("author").get(pk=publication.data["id"])
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


@extend_schema(
    tags=["rooms"],
    parameters=[
        SLUG,
        OpenApiParameter("id", int, OpenApiParameter.PATH, description="Message id."),
    ],
)
class RoomMessageDetailView(APIView):
    """Edit a message (its author) or delete it (its author, the room's owner or staff);
    published on `room:<slug>` as `message_edited` / `message_deleted`."""

    throttle_classes = [WriteThrottle]
    error_fields = {"invalid": "text"}

    @extend_schema(
        request=MessageEditSerializer,
        responses={200: MessageSerializer, 400: ERRORS[400], 403: ERRORS[403], 404: ERRORS[404]},
    )
    def patch(self, request, slug: str, message_id: int):
        room = visible_room(request, slug)
        serializer = MessageEditSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.message_edit(
            room=room,
            actor=request.user,
            message_id=message_id,
            text=serializer.validated_data["text"],
        )
        message = Message.objects.select_related("author").filter(pk=message_id).first()
        if message is None:  # deleted meanwhile
            raise NotFound("No such message.")
        return Response(MessageSerializer(message).data)

    @extend_schema(responses={204: None, 403: ERRORS[403], 404: ERRORS[404]})
    def delete(self, request, slug: str, message_id: int):
        room = visible_room(request, slug)
        services.message_delete(room=room, actor=request.user, message_id=message_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["rooms"], parameters=[SLUG])
class RoomReadView(APIView):
    """Mark the room read up to an offset for the signed-in user (their own read state only)."""

    error_fields = {"invalid": "offset"}

    @extend_schema(
        request=RoomReadSerializer,
        responses={
            200: RoomReadStateSerializer,
            400: ERRORS[400],
            403: ERRORS[403],
            404: ERRORS[404],
        },
    )
    def post(self, request, slug: str):
        room = visible_room(request, slug)
        serializer = RoomReadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        offset = services.room_mark_read(
            user=request.user, room=room, offset=serializer.validated_data["offset"]
        )
        unread = room_unread_counts(request.user, [room]).get(room.pk, 0)
        return Response({"offset": offset, "unread": unread})


@extend_schema(tags=["notifications"])
class NotificationListView(APIView):
    """The signed-in user's notifications, newest first."""

    @extend_schema(
        parameters=[NotificationPageQuerySerializer],
        responses={200: NotificationPageSerializer, 400: ERRORS[400], 403: ERRORS[403]},
    )
    def get(self, request):
        query = NotificationPageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit = min(query.validated_data["limit"], MESSAGES_MAX_LIMIT)
        mine = Notification.objects.filter(user=request.user)
        notifications = mine.order_by("-id")
        if "before" in query.validated_data:
            notifications = notifications.filter(pk__lt=query.validated_data["before"])
        page = list(notifications[: limit + 1])
        return Response(
            {
                "results": NotificationSerializer(page[:limit], many=True).data,
                "has_more": len(page) > limit,
                "unread": mine.filter(read_at__isnull=True).count(),
            }
        )


@extend_schema(tags=["notifications"])
class NotificationReadView(APIView):
    """Mark notifications read; the user's other tabs hear it as `kind: read`."""

    throttle_classes = [WriteThrottle]

    @extend_schema(
        request=NotificationIdsSerializer,
        responses={200: NotificationIdsSerializer, 400: ERRORS[400], 403: ERRORS[403]},
    )
    def post(self, request):
        serializer = NotificationIdsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        marked = services.notifications_mark_read(
            user=request.user, ids=serializer.validated_data["ids"]
        )
        return Response({"ids": marked})


@extend_schema(tags=["announcements"])
class AnnouncementListView(APIView):
    """The newest announcements of the last week (at most 5), without those you dismissed;
    open to anonymous visitors too, like the `broadcast` topic."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: AnnouncementSerializer(many=True)})
    def get(self, request):
        return Response(AnnouncementSerializer(announcements_recent(request.user), many=True).data)


@extend_schema(
    tags=["announcements"],
    parameters=[OpenApiParameter("announcement_id", int, OpenApiParameter.PATH)],
)
class AnnouncementDismissView(APIView):
    """Stop showing an announcement to the signed-in user on pages they open (idempotent)."""

    throttle_classes = [WriteThrottle]

    @extend_schema(request=None, responses={204: None, 403: ERRORS[403], 404: ERRORS[404]})
    def post(self, request, announcement_id: int):
        announcement = Announcement.objects.filter(pk=announcement_id).first()
        if announcement is None:
            raise NotFound("No such announcement.")
        services.announcement_dismiss(user=request.user, announcement=announcement)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["server"])
class DashboardHistoryView(APIView):
    """Staff: the dashboard's samples of the last five minutes, oldest first."""

    permission_classes = [IsStaff]

    @extend_schema(responses={200: DashboardSampleSerializer(many=True), 403: ERRORS[403]})
    def get(self, request):
        return Response(DashboardSampleSerializer(dashboard_history(), many=True).data)


@extend_schema(tags=["server"])
class PublishView(APIView):
    """Publish on a topic as staff, by session or token (room:<slug>, broadcast, user:<id>)."""

    permission_classes = [IsStaff]
    error_fields = {"invalid": "data", "unknown_topic": "topic"}

    @extend_schema(
        request=PublishSerializer,
        responses={
            200: PublicationSerializer,
            400: ERRORS[400],
            403: ERRORS[403],
            404: ERRORS[404],
        },
    )
    def post(self, request):
        serializer = PublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data["data"]
        topic = parse_topic(serializer.validated_data["topic"])
        family = topic.family
        if family.rest_publishing == "nobody":
            raise ValidationError({"topic": [f"{topic.name} is published by the server only."]})
        if family.rest_fields is not None:
            data = {key: data[key] for key in family.rest_fields if key in data}
        if family.rest_publishing == "caller":
            publication = publish_as(request.user, topic, data)
        else:
            publication = publish(topic, data)
        return Response({"topic": publication.topic, "offset": publication.offset})


@extend_schema(tags=["server"])
class ConnectionListView(APIView):
    """Live WebSocket connections (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(responses={200: ConnectionSerializer(many=True), 403: ERRORS[403]})
    def get(self, request):
        return Response(ConnectionSerializer(connections_list(), many=True).data)


@extend_schema(
    tags=["server"],
    parameters=[OpenApiParameter("connection_id", str, OpenApiParameter.PATH)],
)
class ConnectionDetailView(APIView):
    """Close one connection with 4000 (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(responses={204: None, 403: ERRORS[403], 404: ERRORS[404]})
    def delete(self, request, connection_id: str):
        if not connection_disconnect(connection_id):
            raise NotFound("No such connection.")
        return Response(status=status.HTTP_204_NO_CONTENT)
