"""The site's server-rendered pages (the REST API is in realtime.chat.api)."""

from functools import wraps

from django.contrib import messages as flash
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from realtime.chat import services
from realtime.chat.api.throttles import write_refused
from realtime.chat.forms import AnnouncementForm, MemberAddForm, RoomCreateForm, SignUpForm
from realtime.chat.mentions import MENTION_PATTERN, texts_users
from realtime.chat.models import Message, Room
from realtime.chat.payloads import MAX_TEXT_LENGTH
from realtime.chat.selectors import (
    room_last_offsets,
    room_manageable_by,
    room_unread_counts,
    room_visible,
    rooms_visible_to,
)
from realtime.gateway import errors
from realtime.gateway.history import topic_offset

HISTORY_LENGTH = 50
# Public rooms: the mention autocomplete offers the authors of this many recent messages.
RECENT_AUTHORS_FROM = 500
# The rooms list follows this many rooms live (under the socket's subscription cap of
# 100, leaving room for the page's own `user:<id>` and `broadcast`).
LIVE_ROOMS = 90


def too_many(request, refusal: str, retry_after: int):
    """429 in words, with `Retry-After` (PROTOCOL.md, abuse limits)."""
    back = request.path if request.path != "/login/" else "/"
    response = render(request, "too_many.html", {"refusal": refusal, "back": back}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def write_throttled(view):
    """A form view whose POSTs count against the user's (or address's) write rate."""

    @wraps(view)
    def throttled(request, *args, **kwargs):
        if request.method == "POST":
            wait = write_refused(request)
            if wait is not None:
                return too_many(
                    request, f"You are making changes too fast. Try again in {wait} seconds.", wait
                )
        return view(request, *args, **kwargs)

    return throttled


def text_parts(text: str, me: str, known: dict) -> list[dict]:
    """`text` cut into plain runs and `@mentions` of users in `known` (the template escapes
    each part; room.js renders links and code on top)."""
    parts, position = [], 0
    for match in MENTION_PATTERN.finditer(text):
        name = match.group(1).rstrip(".")
        if name not in known:
            continue
        start, end = match.start(), match.start() + 1 + len(name)
        if start > position:
            parts.append({"text": text[position:start], "mention": False})
        parts.append({"text": text[start:end], "mention": True, "me": name == me})
        position = end
    if position < len(text):
        parts.append({"text": text[position:], "mention": False})
    return parts


def visible_room_or_404(user, slug: str) -> Room:
    """The room if `user` may see it; a private room of others is a 404 like a missing one."""
    room = room_visible(user=user, slug=slug)
    if room is None:
        raise Http404("No such room.")
    return room


@login_required
@write_throttled
def room_list(request):
    """The rooms this user can see, and a form to create one."""
    form = RoomCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            room = services.room_create(owner=request.user, **form.cleaned_data)
        except ValidationError as exc:
            for field, problems in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            flash.success(request, f"Room #{room.slug} created.")
            return redirect("room", slug=room.slug)
    rooms = list(rooms_visible_to(request.user))
    unread = room_unread_counts(request.user, rooms)
    last_offsets = room_last_offsets(rooms)
    for room in rooms:
        room.unread = unread.get(room.pk, 0)
        room.last_offset = last_offsets.get(room.pk, 0)
    status = 400 if form.errors else 200
    context = {
        "rooms": rooms,
        "unread_total": sum(unread.values()),
        "form": form,
        "rooms_data": {"me": request.user.pk, "live_limit": LIVE_ROOMS},
    }
    return render(request, "realtime/room_list.html", context, status=status)


def mention_candidates(room: Room, members) -> list[dict]:
    """Whom the send box offers after `@`: a private room's members, else recent authors."""
    User = get_user_model()
    if members is not None and room.is_private:
        users = members
    else:
        recent = Message.objects.filter(room=room).order_by("-offset")[:RECENT_AUTHORS_FROM]
        users = User.objects.filter(pk__in=recent.values("author_id"), is_active=True).order_by(
            "username"
        )
    return [{"id": user.pk, "username": user.get_username()} for user in users]


def room_context(request, room: Room, member_form: MemberAddForm) -> dict:
    me = request.user.get_username()
    # Read before the history: what changes after it comes live (events are idempotent).
    last_offset = topic_offset(room.topic)
    recent = list(
        Message.objects.filter(room=room)
        .select_related("author")
        .order_by("-offset")[:HISTORY_LENGTH]
    )[::-1]
    known = texts_users(message.text for message in recent)
    history = []
    for message in recent:
        parts = text_parts(message.text, me, known)
        # The usernames it mentions, for room.js's rendering (links, code) on top.
        names = dict.fromkeys(part["text"][1:] for part in parts if part["mention"])
        history.append({"message": message, "parts": parts, "mentions": " ".join(names)})
    manage = room_manageable_by(room, request.user)
    members = room.members.order_by("username") if room.is_private or manage else None
    has_more = (
        bool(recent) and Message.objects.filter(room=room, offset__lt=recent[0].offset).exists()
    )
    return {
        "room": room,
        "history": history,
        "has_more": has_more,
        "can_manage": manage,
        "members": members,
        "member_form": member_form,
        "room_data": {
            "slug": room.slug,
            "topic": room.topic,
            "last_offset": last_offset,
            "has_more": has_more,
            "messages_url": f"/api/rooms/{room.slug}/messages/",
            "me": {"id": request.user.pk, "username": me},
            # The owner and staff may delete anyone's message (their own they may edit too).
            "can_moderate": manage,
            "people": mention_candidates(room, members),
            "max_length": MAX_TEXT_LENGTH,
        },
    }


@login_required
def room_detail(request, slug: str):
    """A room: recent history rendered here, then live through the page's script."""
    room = visible_room_or_404(request.user, slug)
    return render(request, "realtime/room.html", room_context(request, room, MemberAddForm()))


@login_required
@require_POST
@write_throttled
def room_member_add(request, slug: str):
    """Add a member (the room's owner or staff); errors re-render the room page."""
    room = visible_room_or_404(request.user, slug)
    if not room_manageable_by(room, request.user):
        raise PermissionDenied("Only the room's owner or staff may add members.")
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            services.room_member_add(room=room, actor=request.user, user=form.member)
        except errors.Forbidden as exc:
            raise PermissionDenied(exc.message) from exc
        flash.success(request, f"{form.member.get_username()} is a member of #{room.slug}.")
        return redirect("room", slug=room.slug)
    return render(request, "realtime/room.html", room_context(request, room, form), status=400)


@login_required
def dashboard(request):
    """Staff only: live charts of the `dashboard` topic, and site-wide announcements."""
    if not request.user.is_staff:
        raise PermissionDenied("The dashboard is for staff.")
    form = AnnouncementForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.announcement_create(author=request.user, text=form.cleaned_data["text"])
        except errors.Invalid as exc:
            form.add_error("text", exc.message)
        else:
            flash.success(request, "Announcement sent.")
            return redirect("dashboard")
    status = 400 if form.errors else 200
    return render(request, "realtime/dashboard.html", {"form": form}, status=status)


@sensitive_post_parameters("password1", "password2")
@write_throttled
def signup(request):
    """Create an account and sign in with it."""
    if request.user.is_authenticated:
        return redirect("rooms")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("rooms")
    return render(request, "registration/signup.html", {"form": form})


class SignInView(auth_views.LoginView):
    """Django's sign-in page; a signed-in visitor whose `next` is this page goes home."""

    redirect_authenticated_user = True

    def get_redirect_url(self):
        url = super().get_redirect_url()
        # Django refuses a redirect back to the sign-in page with a 500 ("redirection loop").
        return "" if url and url.split("?")[0] == self.request.path else url

    def form_invalid(self, form):
        locked_for = getattr(self.request, "sign_in_locked_for", 0)
        if locked_for:
            # Said the same way whether the username exists or not.
            minutes = -(-locked_for // 60)
            return too_many(
                self.request,
                f"Too many failed sign-ins. Try again in {minutes} minutes.",
                locked_for,
            )
        return super().form_invalid(form)
