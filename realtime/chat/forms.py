"""Forms of the site's pages and of the admin's actions."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from realtime.chat.models import Room, slug_validator


class SignUpForm(UserCreationForm):
    """A username and a password twice, for the site's own user model."""

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)


class NotificationForm(forms.Form):
    """What the admin action sends to each selected user."""

    title = forms.CharField(max_length=200)
    body = forms.CharField(widget=forms.Textarea, required=False, max_length=2000)
    url = forms.CharField(
        label="Link",
        max_length=500,
        required=False,
        help_text="Where the notification leads when clicked, e.g. /rooms/lobby/",
    )


class PlainForm(forms.Form):
    """Labels without Django's trailing colon ("Name", not "Name:")."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class RoomCreateForm(PlainForm):
    """
    A new room: a name, its address (the slug) and whether it is private.

    Every field is checked here, so one submission shows every problem at once
    (the model checks again on save, for a room created meanwhile).
    """

    name = forms.CharField(
        max_length=100,
        error_messages={"required": "Give the room a name."},
    )
    slug = forms.CharField(
        label="Address",
        max_length=50,
        help_text="The room opens at /rooms/<address>/: lowercase letters, digits and hyphens.",
        validators=[slug_validator],
        error_messages={
            "required": "Choose an address for the room.",
            "max_length": "Use at most 50 characters for the address.",
        },
    )
    is_private = forms.BooleanField(
        required=False,
        label="Private room",
        help_text="Only its members (and staff) can see it.",
    )

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        if Room.objects.filter(slug=slug).exists():
            raise forms.ValidationError("A room with this address already exists.")
        return slug


class MemberAddForm(PlainForm):
    """Add an active user to a room by username."""

    username = forms.CharField(
        label="Username",
        max_length=150,
        error_messages={"required": "Type the username of the person to add."},
    )

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError("No active user with that name.")
        self.member = user
        return username


class AnnouncementForm(forms.Form):
    """A site-wide announcement, shown live on every page."""

    text = forms.CharField(
        label="Announcement", max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
