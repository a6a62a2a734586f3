"""Forms of the site's pages and of the admin's actions."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm


class SignUpForm(UserCreationForm):
    """A username and a password twice, for the site's own user model."""

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)


class NotificationForm(forms.Form):
    """What the admin action sends to each selected user."""

    title = forms.CharField(max_length=200)
    body = forms.CharField(widget=forms.Textarea, required=False, max_length=2000)
    url = forms.CharField(max_length=500, required=False, help_text="A link, e.g. /rooms/lobby/")


class RoomCreateForm(forms.Form):
    """A new room: its slug (the address), a name, and whether it is private."""

    slug = forms.CharField(
        max_length=50,
        help_text="Lowercase letters, digits and hyphens: the room's address, /rooms/<slug>/.",
    )
    name = forms.CharField(max_length=100)
    is_private = forms.BooleanField(
        required=False, label="Private", help_text="Only members (and staff) can see it."
    )


class MemberAddForm(forms.Form):
    """Add an active user to a room by username."""

    username = forms.CharField(max_length=150)

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
