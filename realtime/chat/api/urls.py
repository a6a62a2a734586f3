"""Routes of the REST API under /api/ (PROTOCOL.md, section REST)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from realtime.chat.api import docs, views

urlpatterns = [
    path("auth/csrf/", views.CsrfView.as_view(), name="api-csrf"),
    path("auth/login/", views.LoginView.as_view(), name="api-login"),
    path("auth/logout/", views.LogoutView.as_view(), name="api-logout"),
    path("me/", views.MeView.as_view(), name="api-me"),
    path("rooms/", views.RoomListView.as_view(), name="api-rooms"),
    path("rooms/<str:slug>/", views.RoomDetailView.as_view(), name="api-room"),
    path("rooms/<str:slug>/members/", views.RoomMemberView.as_view(), name="api-room-members"),
    path(
        "rooms/<str:slug>/members/<str:username>/",
        views.RoomMemberDetailView.as_view(),
        name="api-room-member",
    ),
    path("rooms/<str:slug>/read/", views.RoomReadView.as_view(), name="api-room-read"),
    path("rooms/<str:slug>/messages/", views.RoomMessagesView.as_view(), name="api-room-messages"),
    path(
        "rooms/<str:slug>/messages/<int:message_id>/",
        views.RoomMessageDetailView.as_view(),
        name="api-room-message",
    ),
    path("notifications/", views.NotificationListView.as_view(), name="api-notifications"),
    path(
        "notifications/read/", views.NotificationReadView.as_view(), name="api-notifications-read"
    ),
    path("announcements/", views.AnnouncementListView.as_view(), name="api-announcements"),
    path(
        "announcements/<int:announcement_id>/dismiss/",
        views.AnnouncementDismissView.as_view(),
        name="api-announcement-dismiss",
    ),
    path("dashboard/history/", views.DashboardHistoryView.as_view(), name="api-dashboard-history"),
    path("publish/", views.PublishView.as_view(), name="api-publish"),
    path("connections/", views.ConnectionListView.as_view(), name="api-connections"),
    path(
        "connections/<str:connection_id>/",
        views.ConnectionDetailView.as_view(),
        name="api-connection",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", docs.api_docs, name="api-docs"),
]
