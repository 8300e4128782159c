"""Readout intake: from the pasted text of a joint statement, readout or press release to draft
outcomes a coordinator reviews (and confirms into outcomes and tasks).

Rule-based and deterministic, plain Python: `sentences` splits the text and finds the
commitments, `deadlines` and `amounts` read dates and money, `parties` resolves organization
names against the registry, `services` stores and reviews the drafts.
"""
