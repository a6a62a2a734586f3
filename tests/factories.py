"""Factories for the test suite (one place)."""

import factory
from django.contrib.auth import get_user_model

from realtime.models import Room

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(UserFactory):
    is_staff = True


class RoomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Room
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"room-{n}")
    name = factory.LazyAttribute(lambda r: r.slug.title())
    is_private = False
    owner = factory.SubFactory(UserFactory)

    @factory.post_generation
    def members(obj, create, extracted, **kwargs):
        if not create:
            return
        obj.members.add(obj.owner, *(extracted or []))
