"""What the scale, camera, printer and slide-out report when they fail (edge.devices).

Read by maintainers on the command line and in logs, and (the printer's and the slide-out's) by
collectors on the kiosk.  A ``{reason}`` is either another key of this table or the operating
system's own words (``strerror``), which have no Chinese; a camera's ``{url}`` has its password
replaced (``edge.devices.camera.redact``).
"""

from __future__ import annotations

# key -> (zh, en); {fields} are filled by edge.messages.t().
ENTRIES: dict[str, tuple[str, str]] = {
    # --- printer: what the status query reports (edge.devices.printer.{tspl,zpl,escpos}) -------------
    "printer.head_open": ("打印头打开", "head open"),
    "printer.paper_jam": ("打印机卡纸", "paper jam"),
    "printer.paper_out": ("打印机缺纸", "paper out"),
    "printer.ribbon_out": ("碳带用完", "ribbon out"),
    "printer.paused": ("打印机暂停", "paused"),
    "printer.fault": ("打印机故障", "printer error"),
    "printer.offline": ("打印机离线", "offline: cover open or error"),
    "printer.not_ready": ("{problem} — 打印机 {url}", "{problem} — printer {url}"),
    "printer.no_answer": ("打印机无响应 {url}：{seconds} 秒内未回答状态查询；从不回答的打印机可设置 status = false",
                          "no answer from printer {url} to the status query within {seconds} s; a printer "
                          "that never answers can be configured with status = false"),
    "printer.status_unreadable": ("打印机状态无法识别：{reply}", "unexpected ~HS answer {reply}"),
    # --- printer: what a language cannot carry, and settings ----------------------------------------
    "printer.zpl_qr": ("二维码内容 {payload} 含 ^ 或 ~，ZPL 无法打印",
                       "QR payload {payload}: ZPL field data cannot hold ^ or ~"),
    "printer.too_wide": ("图像宽 {width} 点，超过小票纸宽 {paper} 点",
                         "bitmap {width} dots wide: wider than the receipt paper ({paper} dots)"),
    "printer.language": ("未知的打印机语言 '{name}'（可选 {known}）",
                         "unknown printer language '{name}': one of {known}"),
    "printer.cjk": ("中文打印方式 '{cjk}' 不支持（font 或 bitmap）",
                    "'{cjk}' is not a way to print Chinese (cjk: font or bitmap)"),
    "printer.copies": ("份数 {copies} 超出范围 1-{most}", "copies {copies}: must be 1-{most}"),
    "printer.no_url": ("未配置打印机", "printer.url is not set"),
    # --- printer URLs (edge.devices.printer.transports) ---------------------------------------------
    "printer.url_bad": ("打印机地址 '{url}' 格式错误：{reason}", "printer URL '{url}': {reason}"),
    "printer.url_scheme": ("打印机地址 '{url}' 不支持，应为 {schemes} 之一",
                           "printer URL '{url}': scheme must be one of {schemes}: tcp://host:9100, "
                           "usblp:///dev/usb/lp0, serial:///dev/ttyUSB0?baud=9600"),
    "printer.url_port": ("打印机地址 '{url}' 端口错误", "printer URL '{url}': bad port"),
    "printer.url_tcp": ("打印机地址 '{url}' 格式错误，应为 tcp://host:9100",
                        "printer URL '{url}': expected tcp://host:9100"),
    "printer.url_device": ("打印机地址 '{url}' 格式错误，应为 {scheme}:///dev/…（三个斜杠）",
                           "printer URL '{url}': expected {scheme}:///dev/…, three slashes"),
    "printer.url_params": ("打印机地址 '{url}' 含未知参数 {unknown}（可用：{known}）",
                           "printer URL '{url}': unknown parameter {unknown} (known: {known})"),
    "printer.url_baud": ("打印机地址 '{url}' 波特率错误", "printer URL '{url}': baud must be a positive integer"),
    # --- printer connections: one key per phase, the reason below or the OS's words ---------------------
    "printer.connect_failed": ("无法连接打印机 {url}：{reason}", "cannot connect to printer {url}: {reason}"),
    "printer.connection_lost": ("打印机连接中断 {url}：{reason}", "connection to printer {url} lost: {reason}"),
    "printer.hung_up": ("打印机断开了连接 {url}", "the printer {url} closed the connection"),
    "printer.no_progress": ("打印机不接收数据 {url}：{seconds} 秒无进展",
                            "printer {url} takes no data: no progress for {seconds} s"),
    "printer.why.refused": ("连接被拒绝", "connection refused"),
    "printer.why.timed_out": ("连接超时", "connection timed out"),
    "printer.why.unknown_host": ("未知主机：{detail}", "unknown host: {detail}"),
    "printer.why.no_device": ("设备不存在：打印机是否已插好并开机？",
                              "no such device: is the printer plugged in and switched on?"),
    "printer.why.permission": ("无权限：请把用户加入 lp 组", "permission denied: add the user to the 'lp' group"),
    # --- scale (edge.devices.scales) ------------------------------------------------------------------
    "scale.no_weight": ("{protocol} 帧无可用重量：{reason}", "{protocol} frame carries no usable weight: {reason}"),
    "scale.overload": ("超载", "overload"),
    "scale.underload": ("欠载", "underload"),
    "scale.unknown": ("原因不明", "unknown"),
    "scale.protocol": ("未知的秤协议 '{protocol}'，可选：{known}",
                       "unknown scale protocol '{protocol}'; known: {known}"),
    "scale.port_open": ("无法打开秤端口 '{url}'：{reason}", "cannot open scale port '{url}': {reason}"),
    "scale.port_not_open": ("无法打开秤端口 '{url}'", "cannot open scale port '{url}'"),
    "scale.port_failed": ("秤端口 '{url}' 打开后立即出错：{reason}",
                          "scale port '{url}' failed right after opening: {reason}"),
    "scale.port_lost": ("秤端口 '{url}' 断开：{reason}", "scale port '{url}' lost: {reason}"),
    "scale.port_lost_sending": ("秤端口 '{url}' 发送 {data} 时断开：{reason}",
                                "scale port '{url}' lost while sending {data}: {reason}"),
    "scale.lost_listening": ("侦听时秤端口断开：{reason}", "scale port lost while listening: {reason}"),
    "scale.lost_probing": ("探测时秤端口 '{url}' 断开：{reason}", "scale port '{url}' lost while probing: {reason}"),
    "scale.no_command": ("秤协议 {protocol} 没有{what}命令", "protocol {protocol} has no {what} command"),
    "scale.not_connected": ("无法{what}：秤的状态为 {state}", "cannot {what}: the scale is {state}"),
    "scale.zero": ("清零", "zero"),
    "scale.tare": ("去皮", "tare"),
    # --- camera (edge.devices.camera) -----------------------------------------------------------------
    "camera.url_bad": ("摄像头地址 '{url}' 错误：{reason}", "camera URL '{url}': {reason}"),
    "camera.scheme": ("摄像头地址 '{url}' 不支持，应为 {schemes} 之一",
                      "camera URL '{url}': scheme must be one of {schemes}"),
    "camera.no_host": ("摄像头地址 '{url}' 缺少主机", "camera URL '{url}': no host"),
    "camera.not_stream": ("摄像头地址 '{url}' 不是视频流地址（http、https、rtsp、v4l2）",
                          "camera URL '{url}': not a stream URL (http, https, rtsp, v4l2)"),
    "camera.v4l2_host": ("摄像头地址 '{url}' 应为 v4l2:///dev/videoN（三个斜杠），不应含主机 '{host}'",
                         "camera URL '{url}': expected v4l2:///dev/videoN (three slashes), got host '{host}'"),
    "camera.v4l2_path": ("摄像头地址 '{url}' 应为设备路径，如 v4l2:///dev/video0",
                         "camera URL '{url}': expected a device path like v4l2:///dev/video0"),
    "camera.option_unknown": ("摄像头地址 '{url}' 含未知参数 '{option}'，可用：{known}",
                              "camera URL '{url}': unknown option '{option}'; known: {known}"),
    "camera.option_twice": ("摄像头地址 '{url}' 参数 '{option}' 重复",
                            "camera URL '{url}': option '{option}' given twice"),
    "camera.option_type": ("摄像头地址 '{url}' 参数 {option}='{value}' 不是 {type}",
                           "camera URL '{url}': {option}='{value}' is not a {type}"),
    "camera.option_range": ("摄像头地址 '{url}' 参数 {option}={value} 超出 {low}..{high}",
                            "camera URL '{url}': {option}={value} is outside {low}..{high}"),
    "camera.settings": ("摄像头地址 '{url}'：fps、stall_s 和 open_timeout_s 必须大于 0",
                        "camera URL '{url}': fps, stall_s and open_timeout_s must be > 0"),
    "camera.watchdog": ("摄像头看门狗设置错误：需要 stall_s > 0 且 0 < backoff_first_s <= backoff_max_s，"
                        "实际为 {stall_s}, {first}, {most}",
                        "camera watchdog: need stall_s > 0 and 0 < backoff_first_s <= backoff_max_s, got "
                        "{stall_s}, {first}, {most}"),
    "camera.folder_missing": ("摄像头文件夹 {folder} 不存在", "camera folder {folder} does not exist"),
    "camera.opencv_open": ("摄像头 {url}：OpenCV 无法打开：{reason}", "camera {url}: OpenCV cannot open it: {reason}"),
    "camera.cannot_open": ("摄像头 {url} 无法打开（已拔出、被拒绝或不是视频流）",
                           "camera {url}: cannot be opened (unplugged, refused or not a video stream)"),
    "camera.read_failed": ("摄像头 {url} 读取失败：{reason}", "camera {url}: read failed: {reason}"),
    # --- slide-out (edge.devices.actuator): reaches the kiosk as the fault's reason -----------------
    "actuator.extend_timeout": ("滑出机构未到位：{seconds} 秒内未触发伸出终点开关",
                                "end stop not reached in {seconds} s"),
    "actuator.retract_timeout": ("滑出机构未到位：{seconds} 秒内未触发收回终点开关",
                                 "end stop not reached in {seconds} s"),
}
