"""Every word the console shows, in zh-CN and English: one catalogue, looked up where it is shown.

Pages take ``texts(lang)`` (a flat key -> string dict); the fleet page's script gets the same dict
as JSON, so the server and the script never spell a label twice.  ``lang`` comes from the
``?lang=`` query (which also sets the cookie) or the ``lang`` cookie; zh-CN otherwise.
"""

from __future__ import annotations

from gateway.console.texts import actions, commands, exports, ledger

LANGS = ("zh", "en")  # first is the default
LANG_COOKIE = "lang"

CATALOGUE: dict[str, tuple[str, str]] = {  # key: (zh-CN, English)
    "app": ("医废收集车 运维控制台", "wastecart operator console"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "user": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "login_failed": ("用户名或密码错误", "Wrong user name or password"),
    "login_wait": ("尝试过多，请 {s} 秒后再试", "Too many tries: wait {s} s"),
    "login_locked": ("登录已锁定，请 {m} 分钟后再试", "Login locked: try again in {m} min"),
    "fleet": ("车队", "Fleet"),
    "alerts": ("告警", "Alerts"),
    "nav_ledger": ("台账", "Ledger"),
    "nav_summaries": ("汇总", "Summaries"),
    "nav_quarantine": ("隔离区", "Quarantine"),
    "nav_dead": ("转发失败", "Dead letters"),
    "nav_exports": ("导出", "Exports"),
    "nav_audit": ("审计日志", "Audit log"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "role_viewer": ("只读", "viewer"),
    "role_operator": ("操作员", "operator"),
    "role_admin": ("管理员", "admin"),
    "col_cart": ("车辆", "Cart"),
    "col_site": ("站点", "Site"),
    "col_state": ("状态", "State"),
    "col_since": ("自", "Since"),
    "col_last_seen": ("最后通信", "Last seen"),
    "col_backlog": ("待发", "Backlog"),
    "col_oldest": ("最早待发", "Oldest unsent"),
    "col_disk": ("磁盘剩余", "Disk free"),
    "col_clock": ("时钟", "Clock"),
    "col_scale": ("秤", "Scale"),
    "col_camera": ("相机", "Camera"),
    "col_printer": ("打印机", "Printer"),
    "col_actuator": ("滑出机构", "Slide-out"),
    "col_version": ("软件版本", "Version"),
    "col_boot": ("启动", "Boot"),
    "state_online": ("在线", "online"),
    "state_offline": ("离线", "offline"),
    "state_unknown": ("未知", "unknown"),
    "filter_site": ("站点", "Site"),
    "filter_state": ("状态", "State"),
    "all": ("全部", "all"),
    "live_up": ("实时", "live"),
    "live_down": ("连接中断", "disconnected"),
    "no_carts": ("暂无车辆", "No carts yet"),
    "col_id": ("编号", "#"),
    "col_kind": ("类型", "Kind"),
    "col_subject": ("对象", "Subject"),
    "col_detail": ("详情", "Detail"),
    "col_raised": ("首次", "Raised"),
    "col_count": ("次数", "Count"),
    "col_ack": ("确认", "Acknowledged"),
    "acknowledge": ("确认", "Acknowledge"),
    "acknowledged": ("已确认", "acknowledged"),
    "note": ("备注", "Note"),
    "col_resolved": ("状态", "State"),
    "active": ("未解除", "active"),
    "resolved": ("已解除", "resolved"),
    "cart": ("车辆详情", "Cart"),
    "history": ("历史趋势", "History"),
    "range_24h": ("24小时", "24 h"),
    "range_7d": ("7天", "7 days"),
    "range_30d": ("30天", "30 days"),
    "series_online": ("在线比例 (%)", "Online share (%)"),
    "chart_loading": ("图表加载中…", "Loading the chart…"),
    "chain": ("记录链", "Record chain"),
    "chain_upto": ("已验证至序号", "Verified up to seq"),
    "chain_max": ("最大序号", "Highest seq"),
    "chain_stored": ("已存储", "Stored"),
    "chain_pending": ("待验证", "Pending"),
    "chain_missing": ("缺失序号", "Missing seqs"),
    "chain_first_gap": ("首个缺口", "First gap"),
    "chain_broken": ("断链", "Broken"),
    "records": ("最近记录", "Recent records"),
    "no_records": ("暂无记录", "No records yet"),
    "col_seq": ("序号", "Seq"),
    "col_type": ("类型", "Type"),
    "col_created": ("创建时间", "Created"),
    "col_forward": ("转发", "Forwarded"),
    "col_chain": ("链", "Chain"),
    "col_bags": ("袋数", "Bags"),
    "col_kg": ("重量 (kg)", "Weight (kg)"),
    "col_handovers_today": ("今日交接", "Handovers today"),
    "col_kg_today": ("今日重量 (kg)", "kg today"),
    "series_backlog": ("待发记录", "Backlog"),
    "series_oldest_unsent_s": ("最早待发 (秒)", "Oldest unsent (s)"),
    "series_disk_free_mb": ("磁盘剩余 (MB)", "Disk free (MB)"),
    "series_clock_offset_ms": ("时钟偏差 (毫秒)", "Clock offset (ms)"),
    "series_faults": ("外设故障", "Peripheral faults"),
    "no_history": ("暂无历史数据", "No history yet"),
    "low_high_last": ("最低 {low} · 最高 {high} · 最新 {last}", "low {low} · high {high} · last {last}"),
    "no_alerts": ("暂无告警", "No alerts"),
    "forbidden": ("无权限执行此操作", "You may not do this"),
    "csrf": ("页面已过期，请刷新后重试", "The page expired: reload it and try again"),
    "not_found": ("未找到", "Not found"),
    "seconds": ("秒", "s"),
    "minutes": ("分钟", "min"),
    "mb": ("MB", "MB"),
}
# the pages of issue 15 keep their words beside them; a key spelled twice is a bug caught at import
for _group in (ledger.TEXTS, exports.TEXTS, actions.TEXTS, commands.TEXTS):
    for _key in _group:
        if _key in CATALOGUE:
            raise RuntimeError(f"console text {_key!r} is defined twice")
    CATALOGUE.update(_group)


def lang_of(query: str | None, cookie: str | None) -> str:
    """The language asked for: the query's, else the cookie's, else zh."""
    for asked in (query, cookie):
        if asked in LANGS:
            return asked
    return LANGS[0]


def texts(lang: str) -> dict[str, str]:
    index = LANGS.index(lang) if lang in LANGS else 0
    return {key: pair[index] for key, pair in CATALOGUE.items()}
