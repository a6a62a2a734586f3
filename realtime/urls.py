"""The site's pages: rooms, sign-in, sign-out and sign-up."""

from django.contrib.auth import views as auth_views
from django.urls import path

from realtime import views

urlpatterns = [
    path("", views.room_list, name="rooms"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
]
