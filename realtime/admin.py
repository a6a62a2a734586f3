"""The admin of the `realtime` app: the chat site's (realtime.chat.admin), found by Django here."""

from realtime.chat import admin  # noqa: F401
