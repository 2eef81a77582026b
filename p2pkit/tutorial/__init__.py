"""The course's exercise checker: ``p2pkit tutorial check N FILE``.

The course (``tutorials/``) asks learners to write small functions in every chapter: a message
built by hand, an info-hash, a peer-wire framer, rarest first, a ut_metadata request, a Kademlia
lookup, a flood's cost, questions asked of captures, a seed's block reader. Each chapter has
starting code in ``tutorials/exercises/chNN.py`` (functions that raise
``NotImplementedError``) and reference solutions in ``tutorials/solutions/chNN.py``.
:mod:`p2pkit.tutorial.exercises` checks a learner's file against p2pkit's own implementation
(the schemas, :mod:`p2pkit.bencode`, :mod:`p2pkit.kademlia`, the peer's picker and choker, the
simulators, the conformance suite), on real data (the committed captures, the chapters'
simulators) and on seeded random inputs, and says what is wrong with a hint.
"""
