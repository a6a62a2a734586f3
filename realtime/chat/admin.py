"""
The admin: users, rooms (members inline), the history, notifications and announcements.

Whatever users should see live (a notification, an announcement) goes through
the services, so it is published like any other event; the stored history
(messages, notifications, events) is read-only here, since its offsets come
from publish().
"""

from collections import Counter
from datetime import datetime

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from realtime.chat import services
from realtime.chat.forms import NotificationForm
from realtime.chat.models import (
    Announcement,
    Message,
    Notification,
    Room,
    RoomMembership,
    User,
)
from realtime.gateway.control import connection_disconnect, user_connections_disconnect
from realtime.gateway.models import Event, LiveConnection
from realtime.gateway.registry import connections_list


class ReadOnlyMixin:
    """Rows written by publish(): visible and deletable, never added or edited by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """The site's users, with an action that notifies the selected ones."""

    actions = ["send_notification"]
    list_display = ["username", "email", "is_staff", "is_active", "last_login", "date_joined"]

    @admin.action(description="Send a notification to selected users", permissions=["change"])
    def send_notification(self, request, queryset):
        form = NotificationForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            users = list(queryset)
            with transaction.atomic():
                for user in users:
                    services.notification_create(user=user, **form.cleaned_data)
            self.message_user(
                request,
                f"Sent {form.cleaned_data['title']!r} to {len(users)} user(s).",
                messages.SUCCESS,
            )
            return None
        fieldsets = [(None, {"fields": list(form.fields)})]
        context = {
            **self.admin_site.each_context(request),
            "title": "Send a notification",
            "opts": self.model._meta,
            "form": form,
            "adminform": helpers.AdminForm(form, fieldsets, {}),
            "errors": helpers.AdminErrorList(form, []),
            "users": queryset,
            "action_name": "send_notification",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/realtime/send_notification.html", context)


class MemberInline(admin.TabularInline):
    """A room's members, one row each."""

    model = RoomMembership
    extra = 1
    autocomplete_fields = ["user"]
    verbose_name = "member"
    verbose_name_plural = "members"


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    """Rooms; the owner is always a member."""

    list_display = ["slug", "name", "is_private", "owner", "member_count", "created_at"]
    list_filter = ["is_private"]
    search_fields = ["slug", "name"]
    autocomplete_fields = ["owner"]
    exclude = ["members"]
    inlines = [MemberInline]

    @admin.display(description="members")
    def member_count(self, room: Room) -> int:
        return room.members.count()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        form.instance.members.add(form.instance.owner)


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Chat history: search by text or author, filter by room; moderators may delete."""

    list_display = ["room", "offset", "author", "short_text", "created_at"]
    list_filter = ["room"]
    search_fields = ["text", "author__username"]
    list_select_related = ["room", "author"]
    date_hierarchy = "created_at"

    @admin.display(description="text")
    def short_text(self, message: Message) -> str:
        return message.text if len(message.text) <= 80 else message.text[:79] + "…"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Notifications sent; new ones go out with the action on Users."""

    list_display = ["user", "title", "offset", "created_at", "read_at"]
    list_filter = [("read_at", admin.EmptyFieldListFilter)]
    search_fields = ["title", "body", "user__username"]
    list_select_related = ["user"]


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    """Announcements: "Add" posts one live on `broadcast`; posted ones are read-only."""

    list_display = ["short_text", "author", "offset", "created_at"]
    search_fields = ["text"]
    list_select_related = ["author"]

    @admin.display(description="text")
    def short_text(self, announcement: Announcement) -> str:
        return str(announcement)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["text"]
        return ["text", "author", "offset", "created_at"]

    def save_model(self, request, obj, form, change):
        publication = services.announcement_create(
            author=request.user, text=form.cleaned_data["text"]
        )
        posted = Announcement.objects.get(pk=publication.data["id"])
        # The admin logs and redirects with `obj`: make it the posted row.
        obj.__dict__.update({k: v for k, v in posted.__dict__.items() if not k.startswith("_")})
        obj._state.adding = False
        obj._state.db = posted._state.db

    def save_related(self, request, form, formsets, change):
        """Nothing else to save: the announcement was stored by publish()."""


@admin.register(Event)
class EventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The event log that recovery replays (read-only)."""

    list_display = ["topic", "offset", "publisher", "client_id", "created_at"]
    search_fields = ["topic"]
    list_select_related = ["publisher"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def since(entry: dict) -> datetime | None:
    """The entry's `connected_since` as a datetime, for the template to show localized."""
    value = entry.get("connected_since")
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


@admin.register(LiveConnection)
class LiveConnectionAdmin(admin.ModelAdmin):
    """Every live socket on every process, filterable, with disconnect actions (4000)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            return self.disconnect(request)
        entries = connections_list()
        filters = {name: request.GET.get(name, "").strip() for name in ("user", "topic", "server")}
        shown = [
            entry
            for entry in entries
            if (not filters["user"] or (entry["username"] or "") == filters["user"])
            and (not filters["topic"] or filters["topic"] in entry["topics"])
            and (not filters["server"] or entry["server"] == filters["server"])
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Live connections",
            "opts": self.model._meta,
            "connections": [{**entry, "since": since(entry)} for entry in shown],
            "filters": filters,
            "can_disconnect": self.has_change_permission(request),
            "total": len(entries),
            "users_online": len({e["user_id"] for e in entries if e["user_id"] is not None}),
            "per_server": sorted(Counter(e["server"] for e in entries).items()),
            "per_topic": Counter(t for e in entries for t in e["topics"]).most_common(20),
        }
        return TemplateResponse(request, "admin/realtime/live_connections.html", context)

    def disconnect(self, request):
        """Close one connection, or all of a user's, with 4000; recorded in the admin log."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        connection_id = request.POST.get("connection_id", "")
        user_id = request.POST.get("user_id", "")
        if connection_id:
            closed = 1 if connection_disconnect(connection_id) else 0
            what = f"connection {connection_id}"
        elif user_id.isdigit():
            closed = user_connections_disconnect(user_id=int(user_id))
            what = f"all connections of user {user_id}"
        else:
            self.message_user(request, "Nothing to disconnect.", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        if closed:
            LogEntry.objects.create(
                user=request.user,
                content_type=ContentType.objects.get_for_model(LiveConnection),
                object_id=connection_id or f"user:{user_id}",
                object_repr=what,
                action_flag=CHANGE,
                change_message=f"Disconnected {what} ({closed} socket(s), code 4000).",
            )
            self.message_user(request, f"Disconnected {what}.", messages.SUCCESS)
        else:
            self.message_user(request, f"No live {what}.", messages.WARNING)
        return HttpResponseRedirect(request.get_full_path())
