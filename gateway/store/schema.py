"""The gateway database's schema: numbered migrations applied in order on ``PRAGMA user_version``.

A migration is never edited once released: a change is a new entry at the end, so a gateway
upgraded in the field walks its file forward step by step (``SqliteStore`` applies them at open,
each in its own transaction; ``read_summary`` refuses a file that is not at the latest version).
"""

from __future__ import annotations

from edge import wire

DB_NAME = "gateway.sqlite"

_KINDS_SQL = ", ".join(f"'{k}'" for k in wire.ALERT_KINDS)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: the walking skeleton
        """CREATE TABLE records (
            id TEXT PRIMARY KEY,
            site TEXT NOT NULL,
            cart TEXT NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            created_at TEXT NOT NULL,
            hash TEXT NOT NULL,
            envelope TEXT NOT NULL,
            received_at REAL NOT NULL,
            forward_state TEXT NOT NULL DEFAULT 'stored'
                CHECK (forward_state IN ('stored', 'accepted', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            accepted_at REAL,
            UNIQUE (cart, seq)
        )""",
        "CREATE INDEX records_due ON records (forward_state, next_attempt_at)",
        """CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            received_at REAL NOT NULL,
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            reason TEXT NOT NULL
        )""",
        # upto_seq: largest N such that seqs 1..N of the cart are all in `records`.
        "CREATE TABLE carts (cart TEXT PRIMARY KEY, site TEXT NOT NULL, upto_seq INTEGER NOT NULL)",
        # Event counts that no table holds (duplicates leave no row); kept in the same commit.
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    ),
    (  # 2: chain state, 'forwarding' + re-deliveries, alerts, devices, gap bookkeeping
        f"""CREATE TABLE records_v2 (
            id TEXT PRIMARY KEY,
            site TEXT NOT NULL,
            cart TEXT NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            created_at TEXT NOT NULL,
            hash TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            envelope TEXT NOT NULL,
            received_at REAL NOT NULL,
            chain TEXT NOT NULL CHECK (chain IN ('verified', 'pending', 'broken')),
            forward_state TEXT NOT NULL DEFAULT 'stored'
                CHECK (forward_state IN ('stored', 'forwarding', 'accepted', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            sent_at REAL,
            outcome_unknown INTEGER NOT NULL DEFAULT 0,  -- 1: the last attempt may have arrived
            redelivered INTEGER NOT NULL DEFAULT 0,      -- attempts made after an unknown outcome
            last_error TEXT,
            accepted_at REAL,
            UNIQUE (cart, seq),
            CHECK (length(prev_hash) = {len(wire.GENESIS_HASH)})
        )""",
        """INSERT INTO records_v2 (id, site, cart, seq, type, created_at, hash, prev_hash, envelope,
               received_at, chain, forward_state, attempts, next_attempt_at, last_error, accepted_at)
           SELECT id, site, cart, seq, type, created_at, hash, json_extract(envelope, '$.prev_hash'),
               envelope, received_at, 'pending', forward_state, attempts, next_attempt_at, last_error,
               accepted_at FROM records""",
        f"""UPDATE records_v2 SET chain = CASE
               WHEN seq = 1 THEN iif(prev_hash = '{wire.GENESIS_HASH}', 'verified', 'broken')
               WHEN NOT EXISTS (SELECT 1 FROM records_v2 p WHERE p.cart = records_v2.cart
                                AND p.seq = records_v2.seq - 1) THEN 'pending'
               WHEN prev_hash = (SELECT p.hash FROM records_v2 p WHERE p.cart = records_v2.cart
                                 AND p.seq = records_v2.seq - 1) THEN 'verified'
               ELSE 'broken' END""",
        "DROP TABLE records",
        "ALTER TABLE records_v2 RENAME TO records",
        "CREATE INDEX records_due ON records (forward_state, chain, next_attempt_at)",
        "ALTER TABLE quarantine ADD COLUMN kind TEXT",
        "ALTER TABLE quarantine ADD COLUMN cart TEXT",
        "ALTER TABLE quarantine ADD COLUMN subject TEXT",
        # max_seq: highest stored seq; gap_from: first missing seq of the open gap (NULL: none),
        # so a SEQ_GAP alert is raised once per gap, not once per batch.
        "ALTER TABLE carts ADD COLUMN max_seq INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE carts ADD COLUMN gap_from INTEGER",
        "UPDATE carts SET max_seq = (SELECT COALESCE(MAX(seq), 0) FROM records r WHERE r.cart = carts.cart)",
        f"""CREATE TABLE alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            raised_at REAL NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ({_KINDS_SQL})),
            cart TEXT,
            site TEXT,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL,
            acknowledged_at REAL
        )""",
        "CREATE INDEX alerts_open ON alerts (kind, cart, subject) WHERE acknowledged_at IS NULL",
        """CREATE TABLE devices (
            cart TEXT PRIMARY KEY,
            site TEXT NOT NULL,
            online INTEGER,           -- from the retained status: 1 online, 0 offline, NULL unknown
            boot_id TEXT,
            seq_head INTEGER,
            status TEXT,              -- last status payload (JSON)
            status_at REAL,
            telemetry TEXT,           -- last telemetry payload (JSON)
            telemetry_at REAL,
            last_seen REAL NOT NULL
        )""",
    ),
)
