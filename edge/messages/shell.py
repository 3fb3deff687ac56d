"""What the cart agent, its configuration and start-up say (edge.app, edge.config, the kiosk server)."""

from __future__ import annotations

# key -> (zh, en); {fields} are filled by edge.messages.t().
ENTRIES: dict[str, tuple[str, str]] = {
    # the agent (edge.agent)
    "agent.overload": ("超载", "overload"),
    "agent.underload": ("欠载", "underload"),
    "agent.no_printer": ("未配置打印机，请扫描已有标签", "no printer configured"),
    "agent.print_failed": ("打印程序出错，请查看日志", "printer worker failed, see the log"),
    "agent.wrong_pin": ("PIN 错误，请重新输入", "wrong PIN"),
    "agent.pin_wait": ("请 {seconds} 秒后再试", "try again in {seconds} s"),
    "agent.pin_locked": ("PIN 已锁定，请 {minutes} 分钟后再试", "PIN locked: try again in {minutes} min"),
    # the kiosk server (edge.kiosk)
    "kiosk.no_page": ("触摸屏页面缺失：{folder} 中没有 index.html", "kiosk page missing: no index.html in {folder}"),
    "kiosk.cannot_listen": ("触摸屏服务无法监听 {host}:{port}：{reason}",
                            "kiosk cannot listen on {host}:{port}: {reason}"),
    "kiosk.unknown_action": ("未知操作 {id}", "unknown action {id}"),
    # start-up checks of settings that name a file or a size (edge.app.preflight)
    "setup.setting": ("配置项 {key}：{reason}", "setting {key}: {reason}"),
}
