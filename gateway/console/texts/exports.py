"""The console's words for its exports pages: key -> (zh-CN, English); merged into gateway.console.i18n.

The filter fields' labels are the ledger page's (``ledger_from`` …): the same filter, the same words."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    "export_title": ("导出台账", "Export the ledger"),
    "export_format": ("格式", "Format"),
    "export_format_xlsx": ("Excel (台账 + 汇总 + 说明)", "Excel (ledger, summary, notes)"),
    "export_format_csv": ("CSV (台账, UTF-8)", "CSV (ledger, UTF-8)"),
    "export_format_jsonl": ("jsonl (签名记录, 可离线验证)", "jsonl (signed records, verifiable offline)"),
    "export_jsonl_note": ("jsonl 只按日期和车辆筛选, 并包含每辆车该范围内的全部记录, "
                          "以便用 wastecart verify 验证整条链。",
                          "jsonl takes only the dates and the cart, and carries every record of each cart in that "
                          "range, so that wastecart verify can check the whole chain."),
    "export_start": ("开始导出", "Start export"),
    "export_viewer": ("只读用户不能发起导出。", "Viewers cannot start exports."),
    "export_bad": ("无法导出", "Cannot export"),
    "export_jobs": ("导出任务", "Exports"),
    "export_none": ("暂无导出任务", "No exports yet"),
    "export_col_created": ("创建时间", "Started"),
    "export_col_user": ("发起人", "By"),
    "export_col_format": ("格式", "Format"),
    "export_col_filter": ("筛选", "Filter"),
    "export_col_progress": ("进度", "Progress"),
    "export_col_file": ("文件", "File"),
    "export_state_waiting": ("排队中", "waiting"),
    "export_state_running": ("导出中", "running"),
    "export_state_done": ("完成", "done"),
    "export_state_failed": ("失败", "failed"),
    "export_download": ("下载", "Download"),
    "export_rows": ("{n} 行", "{n} rows"),
    "export_all": ("全部", "everything"),
    "export_kept": ("文件保留 {h} 小时后自动删除。", "Files are deleted {h} h after they were written."),
}
