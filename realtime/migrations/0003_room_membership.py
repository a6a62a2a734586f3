# The auto-created table of Room.members, declared as a model of its own
# (RoomMembership) without touching the database: its rows' deletions then
# send signals. See Django's docs on changing a ManyToManyField to use a
# through model.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("realtime", "0002_live_connection"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="RoomMembership",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "room",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="Room_members+",
                                to="realtime.room",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="Room_members+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "member",
                        "db_table": "realtime_room_members",
                        "unique_together": {("room", "user")},
                    },
                ),
                migrations.AlterField(
                    model_name="room",
                    name="members",
                    field=models.ManyToManyField(
                        blank=True,
                        related_name="rooms",
                        through="realtime.RoomMembership",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
    ]
