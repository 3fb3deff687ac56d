"""The ledger (台账) the gateway keeps from its stored records: what a search, a summary, an export and
an inspector's check read.

Rooms:
    index.py    one record's envelope -> its search row and its bag rows (pure; the store writes them)
    zone.py     the ledger's time zone: days and months of a record, date ranges of a search
    settings.py ``[ledger]``: the zone, how long exports are kept
    search.py   search with keyset pages, a record's view (verdict re-checked), a bag's path
    words.py    a record's body in words (zh/en) for the record page: version 1 bodies, and the dispatch
    words_v2.py version 2 bodies in words: names, roles, dwell, disposal, incidents, corrections
    say.py      the words and value formats both share
    summary.py  bags and weight per day/month x department x category (page, chart, exports)
"""
