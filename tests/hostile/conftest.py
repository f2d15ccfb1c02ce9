"""The hostile tier: real ``leanspeech serve`` processes on loopback, attacked as a careless
or malicious client would (see issue "the memory promise holds against hostile clients").

Each attack is measured the way a user would see it: the server's RSS, sampled from outside
the process, and what the attacked protocol answers. Memory bounds are stated with margin
(another CPU's numerics and allocator move a peak by tens of MiB, not hundreds)."""

import pytest


@pytest.fixture(scope="module")
def jfk_audio(jfk):
    from leanspeech.audio import decode_audio

    return decode_audio(jfk)
