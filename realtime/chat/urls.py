"""The site's pages: rooms, a room, the staff dashboard, sign-in, sign-out and sign-up."""

from django.contrib.auth import views as auth_views
from django.urls import path

from realtime.chat import views

urlpatterns = [
    path("", views.room_list, name="rooms"),
    path("rooms/<slug:slug>/", views.room_detail, name="room"),
    path("rooms/<slug:slug>/members/", views.room_member_add, name="room-members"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
]
