"""What the ledger and the uplink report when a record cannot be committed or sent (edge.ledger),
and what the cart's key reports (edge.keys: the key that signs every ledger record).

A refusal to commit reaches the kiosk (the workflow's CommitFailed), so its Chinese is for the
collector; the paths and SQLite's own reason are for whoever reads the log.
"""

from __future__ import annotations

# key -> (zh, en); {fields} are filled by edge.messages.t().
ENTRIES: dict[str, tuple[str, str]] = {
    # the ledger file
    "ledger.cannot_open": ("无法打开记录库 {path}：{reason}", "{path}: cannot open the ledger ({reason})"),
    "ledger.other_cart": ("记录库 {path} 属于车辆 {owner}，不是 {cart}",
                          "{path}: ledger belongs to cart {owner}, not {cart}"),
    "ledger.none": ("{path} 没有记录库（--data 是车辆的数据目录吗？）",
                    "no ledger at {path} (is --data the cart's data folder?)"),
    "ledger.unreadable": ("无法读取记录库 {path}：{reason}", "{path}: cannot read the ledger ({reason})"),
    # a commit refused: nothing was written
    "ledger.low_disk": ("磁盘空间不足，记录未保存：{folder} 仅剩 {left} MB，至少需要 {need} MB",
                        "disk nearly full: record NOT saved: {folder} has {left} MB free, needs {need} MB"),
    "ledger.disk_full": ("磁盘已满：{what}", "disk full: {what}"),
    "ledger.not_saved": ("记录未保存：{path}：{reason}", "record NOT saved in {path}: {reason}"),
    "ledger.not_recordable": ("记录未保存：记录内容无法写入（{reason}）",
                              "record NOT saved: its content cannot be recorded ({reason})"),
    # acks and upkeep
    "ledger.ack_failed": ("无法记录网关的确认：{path}：{reason}",
                          "cannot record the gateway's ack in {path}: {reason}"),
    "ledger.purge_failed": ("无法清理旧记录：{path}：{reason}", "cannot purge old records in {path}: {reason}"),
    # the uplink
    "uplink.bad_broker": ("MQTT 服务器地址错误：{reason}", "bad broker address: {reason}"),
    "uplink.tls": ("TLS 证书或密钥无法使用：{reason}", "TLS certificate or key unusable: {reason}"),
    "uplink.no_gateway_key": ("没有网关公钥：请设置 uplink.gateway_keys（或 --gateway-key），否则推车不会相信任何确认",
                              "no gateway key: set uplink.gateway_keys (or --gateway-key); without one the cart "
                              "would believe no ack"),
    # the cart's signing key (edge.keys)
    "key.unreadable": ("{path}：无法读取 Ed25519 私钥（{reason}）",
                       "{path}: not a readable Ed25519 private key ({reason})"),
    "key.not_ed25519": ("{path}：密钥不是 Ed25519 密钥", "{path}: key is not Ed25519"),
}
