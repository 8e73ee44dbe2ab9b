"""gnnsys._tokens: cache tokens compare tensors by identity and version, never by id()."""

import gc

import torch

from gnnsys._tokens import tensors_token, token_matches


def test_same_tensors_match_and_in_place_changes_do_not():
    a, b = torch.zeros(4), torch.ones(2)
    tok = tensors_token(a, None, b)
    assert token_matches(tok, a, None, b)
    assert not token_matches(tok, a, b, None)  # positions matter
    assert not token_matches(tok, a, None)  # so does the count
    b.add_(1)  # an in-place change bumps the version
    assert not token_matches(tok, a, None, b)


def test_a_new_tensor_at_a_collected_ones_address_does_not_match():
    # CPython hands a freed object's memory to the next one of its size: id() repeats. Loop
    # until it does (almost always at once) and check the token still tells them apart.
    for _ in range(200):
        t = torch.rand(8)
        old = id(t)
        tok = tensors_token(t)
        del t
        gc.collect()
        u = torch.rand(8)
        if id(u) == old:
            assert not token_matches(tok, u)
            return
    raise AssertionError("no id was reused in 200 tries; the case this guards is untested")


def test_token_does_not_keep_its_tensors_alive():
    t = torch.zeros(3)
    tok = tensors_token(t)
    ref = tok[0][0]
    del t
    gc.collect()
    assert ref() is None


def test_objects_without_weak_references_are_held():
    a = [1, 2]  # a list takes no weak reference: the token keeps it (its id stays taken)
    tok = tensors_token(a)
    assert token_matches(tok, a) and not token_matches(tok, [1, 2])
