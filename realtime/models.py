"""
The `realtime` app's models, gathered for Django: the gateway's tables and the
chat site's. One app label, so `AUTH_USER_MODEL` and the migrations stay put.
"""

from realtime.chat.models import (  # noqa: F401
    SLUG_PATTERN,
    Announcement,
    AnnouncementDismissal,
    Message,
    Notification,
    Room,
    RoomMembership,
    RoomReadState,
    User,
    slug_validator,
)
from realtime.gateway.models import Event, LiveConnection, TopicSequence  # noqa: F401
