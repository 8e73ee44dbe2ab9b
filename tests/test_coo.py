"""gnnsys._coo: csc_destinations (each edge's destination from column pointers, with an offset,
a dtype, empty columns and the known edge count) and csc_indptr (the pointers back)."""

import torch

from gnnsys._coo import csc_destinations, csc_indptr


def test_destinations_of_a_csc():
    indptr = torch.tensor([0, 2, 2, 5, 6])
    assert csc_destinations(indptr).tolist() == [0, 0, 2, 2, 2, 3]
    assert csc_destinations(indptr, start=10, num_edges=6).tolist() == [10, 10, 12, 12, 12, 13]
    out = csc_destinations(indptr, dtype=torch.int32)
    assert out.dtype == torch.int32
    assert csc_destinations(torch.tensor([0])).numel() == 0
    assert csc_destinations(torch.tensor([0, 0, 0])).numel() == 0


def test_indptr_counts_destinations_and_inverts_destinations():
    dst = torch.tensor([2, 0, 2, 3, 0])
    assert csc_indptr(dst, 5).tolist() == [0, 2, 2, 4, 5, 5]
    assert csc_indptr(torch.zeros(0, dtype=torch.long), 2).tolist() == [0, 0, 0]
    indptr = torch.tensor([0, 2, 2, 5, 6])
    assert torch.equal(csc_indptr(csc_destinations(indptr), 4), indptr)
