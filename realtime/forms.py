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
