"""The site's server-rendered pages (the REST API is in realtime.api)."""

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters

from realtime.forms import SignUpForm
from realtime.topics import rooms_visible_to


@login_required
def room_list(request):
    """The rooms this user can see."""
    rooms = rooms_visible_to(request.user)
    return render(request, "realtime/room_list.html", {"rooms": rooms})


@sensitive_post_parameters("password1", "password2")
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
