"""The course's exercise checker: ``p2pkit tutorial check N FILE``.

The course (``tutorials/``) asks learners to write small functions: a message built by hand, an
info-hash, a merkle root, a compact peer list decoded, a Kademlia bucket depth. Each chapter
with such exercises has starting code in ``tutorials/exercises/chNN.py`` (functions that raise
``NotImplementedError``) and reference solutions in ``tutorials/solutions/chNN.py``.
:mod:`p2pkit.tutorial.exercises` checks a learner's file against p2pkit's own implementation
(the schemas, :mod:`p2pkit.bencode`, :mod:`p2pkit.kademlia`), on real data shipped with p2pkit
and on seeded random inputs, and says what is wrong with a hint.
"""
