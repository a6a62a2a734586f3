"""Request validation and response shapes of the REST API (PROTOCOL.md, section REST)."""

from datetime import datetime

from django.contrib.auth import authenticate, get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from realtime.chat.mentions import mentions_in
from realtime.chat.models import Announcement, Message, Notification, Room, slug_validator

MAX_ID = 2**63 - 1  # the largest value a 64-bit integer column holds
MESSAGES_DEFAULT_LIMIT = 50
MESSAGES_MAX_LIMIT = 200


class StrictCharField(serializers.CharField):
    """A string, and only a string (no number coerced into one), like a socket `publish`."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class UserBriefSerializer(serializers.Serializer):
    """A user as the protocol names one: `{id, username}`."""

    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)


class MeSerializer(serializers.ModelSerializer):
    """The signed-in user."""

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "is_staff"]
        read_only_fields = fields


class CsrfSerializer(serializers.Serializer):
    """The CSRF token also set as the `csrftoken` cookie (send it back as X-CSRFToken)."""

    csrf_token = serializers.CharField(read_only=True)


class DetailSerializer(serializers.Serializer):
    """A human-readable confirmation or refusal."""

    detail = serializers.CharField(read_only=True)


class LoginSerializer(serializers.Serializer):
    """Credentials for `POST /api/auth/login/`; `validated_data["user"]` once they check out."""

    username = StrictCharField(max_length=150, trim_whitespace=False)
    password = StrictCharField(
        max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )

    def validate(self, attrs):
        user = authenticate(
            self.context.get("request"), username=attrs["username"], password=attrs["password"]
        )
        if user is None:
            raise serializers.ValidationError(
                "Those credentials do not match an active account.", code="authorization"
            )
        attrs["user"] = user
        return attrs


class RoomSerializer(serializers.ModelSerializer):
    """A room; its `slug` is fixed once it exists."""

    slug = serializers.CharField(
        max_length=50,
        validators=[slug_validator],
        help_text="Matches [a-z0-9][a-z0-9-]{0,49}; the room's topic is room:<slug>.",
    )
    name = StrictCharField(max_length=100)
    is_private = serializers.BooleanField(default=False)
    owner = UserBriefSerializer(read_only=True)
    topic = serializers.CharField(read_only=True)

    class Meta:
        model = Room
        fields = ["slug", "name", "is_private", "owner", "topic", "created_at"]
        read_only_fields = ["created_at"]

    def validate_slug(self, value: str) -> str:
        if Room.objects.filter(slug=value).exists():
            raise serializers.ValidationError(
                "A room with this slug already exists.", code="unique"
            )
        return value


@extend_schema_serializer(component_name="Room")  # the name GET /api/rooms/ always had
class RoomListItemSerializer(RoomSerializer):
    """A room in `GET /api/rooms/`, with how many of its messages the user has not read."""

    unread = serializers.SerializerMethodField(
        help_text="Messages after the user's read state, not written by the user."
    )
    last_offset = serializers.SerializerMethodField(
        help_text="The offset of the room's newest message (0 when it has none)."
    )

    class Meta(RoomSerializer.Meta):
        fields = [*RoomSerializer.Meta.fields, "unread", "last_offset"]

    def get_unread(self, room) -> int:
        return self.context.get("unread", {}).get(room.pk, 0)

    def get_last_offset(self, room) -> int:
        return self.context.get("last_offsets", {}).get(room.pk, 0)


class RoomReadSerializer(serializers.Serializer):
    """`POST /api/rooms/<slug>/read/ {offset}`: the room is read up to this offset."""

    offset = serializers.IntegerField(
        min_value=0,
        max_value=MAX_ID,
        help_text="The offset of the last message seen; clamped to the room's last message.",
    )


class RoomReadStateSerializer(serializers.Serializer):
    """The user's read state of a room after the call: never moves back."""

    offset = serializers.IntegerField(help_text="Read up to this offset.")
    unread = serializers.IntegerField(help_text="Messages still unread in the room.")


class RoomUpdateSerializer(serializers.Serializer):
    """`PATCH /api/rooms/<slug>/`: a new name, or a change of privacy."""

    name = StrictCharField(max_length=100, required=False)
    is_private = serializers.BooleanField(required=False)


class RoomDetailSerializer(RoomSerializer):
    """A room with its members."""

    members = UserBriefSerializer(many=True, read_only=True)

    class Meta(RoomSerializer.Meta):
        fields = [*RoomSerializer.Meta.fields, "members"]


class MemberAddSerializer(serializers.Serializer):
    """`{username}` of an active user to add to a room; `validated_data["user"]` is that user."""

    username = StrictCharField(max_length=150)

    def validate(self, attrs):
        user = get_user_model().objects.filter(username=attrs["username"], is_active=True).first()
        if user is None:
            raise serializers.ValidationError({"username": ["No active user has this username."]})
        attrs["user"] = user
        return attrs


class MessageSerializer(serializers.ModelSerializer):
    """
    A chat message with its offset on `room:<slug>`, as it is now (`edited_at`
    is null unless edited); `mentions` are the active users it names. Pass the
    page's `texts_users(...)` as context `known` to look them up in one query.
    """

    author = UserBriefSerializer(read_only=True)
    mentions = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["id", "offset", "text", "author", "created_at", "edited_at", "mentions"]
        read_only_fields = fields

    @extend_schema_field(UserBriefSerializer(many=True))
    def get_mentions(self, message: Message) -> list[dict]:
        return mentions_in(message.text, self.context.get("known"))


class MessageEditSerializer(serializers.Serializer):
    """`{text}` of an edit: 1 to 2,000 characters after trimming (checked by the topic)."""

    text = StrictCharField(allow_blank=True, trim_whitespace=False, max_length=100_000)


class MessageCreateSerializer(serializers.Serializer):
    """`{text}`: 1 to 2,000 characters after trimming (checked by the topic, as on a socket)."""

    text = StrictCharField(allow_blank=True, trim_whitespace=False, max_length=100_000)


class MessagePageQuerySerializer(serializers.Serializer):
    """`?before=<offset>&limit=<n>` of the message history."""

    before = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="Only messages with a smaller offset; without it, the newest.",
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        default=MESSAGES_DEFAULT_LIMIT,
        help_text=f"How many messages (default {MESSAGES_DEFAULT_LIMIT}, "
        f"values above {MESSAGES_MAX_LIMIT} count as {MESSAGES_MAX_LIMIT}).",
    )


class MessagePageSerializer(serializers.Serializer):
    """One page of history, oldest first; `has_more` when older messages exist."""

    results = MessageSerializer(many=True)
    has_more = serializers.BooleanField()


class NotificationSerializer(serializers.ModelSerializer):
    """A notification with its offset on `user:<id>`; `read_at` is null while unread."""

    class Meta:
        model = Notification
        fields = ["id", "offset", "title", "body", "url", "created_at", "read_at"]
        read_only_fields = fields


class NotificationPageQuerySerializer(serializers.Serializer):
    """`?before=<id>&limit=<n>` of the notification list (newest first)."""

    before = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="Only notifications with a smaller id.",
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        default=MESSAGES_DEFAULT_LIMIT,
        help_text=f"How many (default {MESSAGES_DEFAULT_LIMIT}, clamped to {MESSAGES_MAX_LIMIT}).",
    )


class NotificationPageSerializer(serializers.Serializer):
    """The user's notifications, newest first, and how many are unread in all."""

    results = NotificationSerializer(many=True)
    has_more = serializers.BooleanField()
    unread = serializers.IntegerField()


class NotificationIdsSerializer(serializers.Serializer):
    """`{ids}`: notification ids (the user's own; others are ignored)."""

    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), max_length=1000
    )


class AnnouncementSerializer(serializers.ModelSerializer):
    """A site-wide announcement with its offset on `broadcast`."""

    class Meta:
        model = Announcement
        fields = ["id", "offset", "text", "created_at"]
        read_only_fields = fields


class DashboardSampleSerializer(serializers.Serializer):
    """One second of the staff dashboard's charts."""

    ts = serializers.CharField(help_text="ISO 8601 UTC.")
    connections = serializers.IntegerField(allow_null=True)
    users_online = serializers.IntegerField(allow_null=True)
    messages_per_second = serializers.FloatField(allow_null=True)
    delivery_lag_ms = serializers.FloatField(allow_null=True)


class PublishSerializer(serializers.Serializer):
    """`{topic, data}` for `POST /api/publish/`."""

    topic = StrictCharField(max_length=100, help_text="room:<slug>, user:<id> or broadcast.")
    data = serializers.DictField(
        help_text="{text} for room:<slug> and broadcast; {title, body?, url?} for user:<id>."
    )


class PublicationSerializer(serializers.Serializer):
    """Where a publication went: its topic and offset."""

    topic = serializers.CharField()
    offset = serializers.IntegerField(allow_null=True)


class ConnectionSerializer(serializers.Serializer):
    """A live WebSocket connection."""

    connection_id = serializers.CharField()
    user = serializers.SerializerMethodField()
    server = serializers.CharField()
    client = serializers.CharField(allow_null=True, required=False)
    user_agent = serializers.CharField(allow_null=True, required=False)
    connected_since = serializers.SerializerMethodField()
    topics = serializers.ListField(child=serializers.CharField())

    @extend_schema_field(UserBriefSerializer(allow_null=True))
    def get_user(self, obj) -> dict | None:
        if obj.get("user_id") is None:
            return None
        return {"id": obj["user_id"], "username": obj.get("username", "")}

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_connected_since(self, obj) -> str:
        value = obj.get("connected_since")
        return value.isoformat() if isinstance(value, datetime) else str(value)
