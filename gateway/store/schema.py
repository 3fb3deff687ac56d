"""The gateway database's schema: numbered migrations applied in order on ``PRAGMA user_version``.

A migration is never edited once released: a change is a new entry at the end, so a gateway
upgraded in the field walks its file forward step by step (``SqliteStore`` applies them at open,
each in its own transaction; ``read_summary`` refuses a file that is not at the latest version).
"""

from __future__ import annotations

from edge import wire

DB_NAME = "gateway.sqlite"

# Alert kinds each migration allows.  Written out, not taken from wire.ALERT_KINDS, so that a
# released migration never changes under a new release: migrations 2 and 3 allow the wire's kinds
# as of issue 11.
ALERT_KINDS_V3 = ("FORGED", "ALTERED", "REPLAYED", "CHAIN_BREAK", "SEQ_GAP", "UNKNOWN_CART", "MALFORMED")
_KINDS_V3_SQL = ", ".join(f"'{k}'" for k in ALERT_KINDS_V3)

# Migration 5 (issues 13, 14): PIN_LOCKOUT and the gateway's own alerts beside the wire's.  Condition
# kinds resolve themselves when the fleet's state clears them; domain kinds come from the flags of
# stored records.
ALERT_KINDS_V5 = (*ALERT_KINDS_V3, "PIN_LOCKOUT", "RECORD_REJECTED",
                  "OFFLINE", "BACKLOG", "OLDEST_UNSENT", "CLOCK", "DISK", "PERIPHERAL",
                  "STORAGE_OVERDUE", "WEIGHT_DEVIATION", "BAG_MISSING")
_KINDS_V5_SQL = ", ".join(f"'{k}'" for k in ALERT_KINDS_V5)
# Telemetry history fields (migration 5): each raw row holds them; an aggregate row holds, per field,
# its sum, the number of non-null values, min and max (so that merging two aggregates is exact).
HISTORY_FIELDS_V5 = ("backlog", "oldest_unsent_s", "disk_free_mb", "clock_offset_ms", "faults", "online")
_HISTORY_RAW_SQL = ", ".join(f"{f} INTEGER" for f in HISTORY_FIELDS_V5)
_HISTORY_AGG_SQL = ", ".join(f"{f}_sum REAL, {f}_n INTEGER NOT NULL DEFAULT 0, {f}_min REAL, {f}_max REAL"
                             for f in HISTORY_FIELDS_V5)

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
            kind TEXT NOT NULL CHECK (kind IN ({_KINDS_V3_SQL})),
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
    (  # 3 (issue 11): bounded quarantine, collapsed alerts, verified devices, commands and their results
        # quarantine keeps a prefix of a payload: its full size and SHA-256 beside it; a record can be
        # released by an operator (released_at, release_note).
        "ALTER TABLE quarantine ADD COLUMN size INTEGER",
        "ALTER TABLE quarantine ADD COLUMN sha256 TEXT",
        "ALTER TABLE quarantine ADD COLUMN site TEXT",
        "ALTER TABLE quarantine ADD COLUMN seq INTEGER",
        "ALTER TABLE quarantine ADD COLUMN released_at REAL",
        "ALTER TABLE quarantine ADD COLUMN release_note TEXT",
        "UPDATE quarantine SET size = length(payload)",
        # bytes the quarantine holds (payload prefix + topic + reason), kept with every insert/delete
        """INSERT INTO counters (name, value) SELECT 'quarantine_bytes',
               COALESCE(SUM(length(payload) + length(topic) + length(reason)), 0) FROM quarantine""",
        # alerts of one kind and cart collapse into one open row: count + last_seen
        f"""CREATE TABLE alerts_v3 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            raised_at REAL NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ({_KINDS_V3_SQL})),
            cart TEXT,
            site TEXT,
            subject TEXT NOT NULL,     -- of the latest occurrence
            detail TEXT NOT NULL,      -- of the latest occurrence
            acknowledged_at REAL,
            count INTEGER NOT NULL DEFAULT 1,
            last_seen REAL NOT NULL
        )""",
        """INSERT INTO alerts_v3 (id, raised_at, kind, cart, site, subject, detail, acknowledged_at, count,
               last_seen) SELECT id, raised_at, kind, cart, site, subject, detail, acknowledged_at, 1, raised_at
               FROM alerts""",
        "DROP TABLE alerts",
        "ALTER TABLE alerts_v3 RENAME TO alerts",
        "CREATE INDEX alerts_open ON alerts (kind, cart) WHERE acknowledged_at IS NULL",
        # devices: only verified status/telemetry; seq_head is what the gateway verified, the claim beside it
        "ALTER TABLE devices ADD COLUMN seq_head_claimed INTEGER",
        # every boot of a cart seen in a verified status: an older boot's status is a replay
        """CREATE TABLE boots (
            cart TEXT NOT NULL,
            boot_id TEXT NOT NULL,
            first_seen REAL NOT NULL,
            PRIMARY KEY (cart, boot_id)
        )""",
        # the per-cart command counter: persistent, incremented in the transaction that logs the command
        "CREATE TABLE command_counters (cart TEXT PRIMARY KEY, counter INTEGER NOT NULL)",
        """CREATE TABLE commands (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            cart TEXT NOT NULL,
            site TEXT NOT NULL,
            name TEXT NOT NULL,
            boot_id TEXT NOT NULL,
            counter INTEGER NOT NULL,
            args TEXT NOT NULL,
            sent_at REAL NOT NULL,
            UNIQUE (cart, counter)
        )""",
        """CREATE TABLE cmd_results (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            cart TEXT NOT NULL,
            site TEXT NOT NULL,
            name TEXT NOT NULL,
            boot_id TEXT NOT NULL,
            counter INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            reason TEXT NOT NULL,
            received_at REAL NOT NULL
        )""",
    ),
    (  # 4 (issue 14): the operator console's users (argon2id hashes; a disabled user keeps its row for the audit)
        """CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
            password_hash TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
            created_at REAL NOT NULL,
            changed_at REAL NOT NULL
        )""",
    ),
    (  # 5 (issues 13, 14): alert lifecycle, PIN_LOCKOUT and the gateway's rules, telemetry history, webhook outbox
        # An alert is active while resolved_at IS NULL (repeats collapse onto it); acknowledged by whom, with a note.
        f"""CREATE TABLE alerts_v5 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            raised_at REAL NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ({_KINDS_V5_SQL})),
            cart TEXT,
            site TEXT,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL,
            acknowledged_at REAL,
            count INTEGER NOT NULL DEFAULT 1,
            last_seen REAL NOT NULL,
            acknowledged_by TEXT,
            ack_note TEXT,
            resolved_at REAL
        )""",
        # an acknowledged tamper alert was over for the old schema: resolved when acknowledged
        """INSERT INTO alerts_v5 (id, raised_at, kind, cart, site, subject, detail, acknowledged_at, count, last_seen,
               resolved_at) SELECT id, raised_at, kind, cart, site, subject, detail, acknowledged_at, count, last_seen,
               acknowledged_at FROM alerts""",
        "DROP TABLE alerts",
        "ALTER TABLE alerts_v5 RENAME TO alerts",
        "CREATE INDEX alerts_active ON alerts (kind, cart) WHERE resolved_at IS NULL",
        "CREATE INDEX alerts_cart ON alerts (cart, id)",
        # since when the online flag holds (the status that flipped it); peripherals not ok since when (JSON)
        "ALTER TABLE devices ADD COLUMN online_since REAL",
        "UPDATE devices SET online_since = status_at WHERE online IS NOT NULL",
        "ALTER TABLE devices ADD COLUMN faulty_since TEXT",
        f"CREATE TABLE telemetry_raw (cart TEXT NOT NULL, at REAL NOT NULL, {_HISTORY_RAW_SQL})",
        "CREATE INDEX telemetry_raw_cart ON telemetry_raw (cart, at)",
        # res: the bucket's width (s): 60 per-minute, 3600 per-hour aggregates; bucket: its start (unix s)
        f"""CREATE TABLE telemetry_agg (
            res INTEGER NOT NULL CHECK (res IN (60, 3600)),
            cart TEXT NOT NULL,
            bucket REAL NOT NULL,
            n INTEGER NOT NULL,
            {_HISTORY_AGG_SQL},
            UNIQUE (res, cart, bucket)
        )""",
        "CREATE INDEX telemetry_agg_age ON telemetry_agg (res, bucket)",
        # alert changes waiting for the webhook, oldest first; payload: the JSON body as it will be POSTed
        """CREATE TABLE webhook_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at REAL NOT NULL,
            event TEXT NOT NULL,
            payload TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT
        )""",
    ),
    (  # 6 (issue 15): the ledger's index, the operators' audit log, discarded quarantine rows and dead letters
        # One row per stored record (gateway.ledger.index): what a search filters on, without decoding envelopes.
        # at: created_at as unix s; day: its date in the ledger's zone (ledger_meta.zone).
        """CREATE TABLE ledger_records (
            id TEXT PRIMARY KEY,
            cart TEXT NOT NULL,
            site TEXT NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            at REAL NOT NULL,
            day TEXT NOT NULL,
            department TEXT,
            collector TEXT,
            confirmer TEXT,
            bags INTEGER NOT NULL,
            weight_g INTEGER NOT NULL,
            refers_to TEXT
        )""",
        "CREATE INDEX ledger_records_at ON ledger_records (at)",
        "CREATE INDEX ledger_records_cart ON ledger_records (cart, at)",
        "CREATE INDEX ledger_records_department ON ledger_records (department, at)",
        "CREATE INDEX ledger_records_collector ON ledger_records (collector, at)",
        "CREATE INDEX ledger_records_confirmer ON ledger_records (confirmer, at)",
        "CREATE INDEX ledger_records_type ON ledger_records (type, at)",
        "CREATE INDEX ledger_records_refers ON ledger_records (refers_to) WHERE refers_to IS NOT NULL",
        # One row per bag line of a record; voided_by: the void record that took this bag out of the ledger.
        """CREATE TABLE ledger_bags (
            package_code TEXT NOT NULL,
            record_id TEXT NOT NULL,
            type TEXT NOT NULL,
            cart TEXT NOT NULL,
            at REAL NOT NULL,
            day TEXT NOT NULL,
            category TEXT,
            department TEXT,
            weight_g INTEGER,
            status TEXT NOT NULL,
            voided_by TEXT,
            PRIMARY KEY (package_code, record_id)
        )""",
        "CREATE INDEX ledger_bags_record ON ledger_bags (record_id)",
        # covers a summary (bags and grams per day x department x category) without reading the table
        "CREATE INDEX ledger_bags_summary ON ledger_bags (type, day, department, category, voided_by, weight_g, at)",
        # the public keys records were verified with, per cart: a jsonl export carries them for `wastecart verify`
        """CREATE TABLE cart_keys (
            cart TEXT NOT NULL,
            public_key TEXT NOT NULL,
            first_used REAL NOT NULL,
            last_used REAL NOT NULL,
            PRIMARY KEY (cart, public_key)
        )""",
        # what the index was built with: version (gateway.ledger.index.INDEX_VERSION) and zone; else rebuilt
        "CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # Every operator action (who, when, what, on what, why): appended, hash-chained, never changed.
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            user TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
           BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
           BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        # an operator's discard of a quarantined payload or of a dead letter: when, by whom, why
        "ALTER TABLE quarantine ADD COLUMN discarded_at REAL",
        "ALTER TABLE quarantine ADD COLUMN discarded_by TEXT",
        "ALTER TABLE quarantine ADD COLUMN discard_reason TEXT",
        "ALTER TABLE records ADD COLUMN discarded_at REAL",
        "ALTER TABLE records ADD COLUMN discarded_by TEXT",
        "ALTER TABLE records ADD COLUMN discard_reason TEXT",
        # who asked for a command (an operator in the console; NULL: the gateway itself, e.g. a resend)
        "ALTER TABLE commands ADD COLUMN requested_by TEXT",
        "CREATE INDEX cmd_results_cart ON cmd_results (cart, counter)",
    ),
)
