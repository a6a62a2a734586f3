import pytest

from tests.ws import connect

pytestmark = pytest.mark.django_db(transaction=True)


async def test_member_receives_message_published_in_room(room, user, other_user):
    alice = await connect(user)
    bob = await connect(other_user)
    await alice.subscribe("room:general")
    await bob.subscribe("room:general")
    await alice.send({"type": "publish", "topic": "room:general", "data": {"text": "hi"}, "ref": "p1"})
    frames = await alice.receive_until("ack")
    print(frames)
    frames = await bob.receive_until("event")
    print(frames)
    assert frames[-1]["data"]["text"] == "hi"
    await alice.close()
    await bob.close()
