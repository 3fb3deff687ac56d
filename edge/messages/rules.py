"""What the kiosk says about the rules of signing, dwell, loss, manifests and labels (issue 16).

Refusals name the person and say in plain words who may sign instead: a gloved nurse of the wrong
ward, a porter or a driver must learn at once whose badge is needed.
"""

from __future__ import annotations

# key -> (zh, en); {fields} are filled by t().  Keep both sides' fields identical (a test checks).
ENTRIES: dict[str, tuple[str, str]] = {
    # who is who
    "rules.unknown_person": ("工牌 {person} 不在人员名单中（名单版本 {version}），请联系主管",
                             "Badge {person} is not on the roster (version {version}); ask a supervisor"),
    "rules.not_collector": ("{name}（{role}）不能开始收集：请收集人员刷工牌",
                            "{name} ({role}) cannot start a round: a collector's badge is needed"),
    "rules.nurse_only": ("{name}（{role}）不能确认交接：须由{department}的护士刷卡或输入 PIN",
                         "{name} ({role}) cannot confirm the handover: a nurse of {department} must (badge or PIN)"),
    "rules.other_department": ("{name}是{their}的护士，不能为{department}签字：须由{department}的护士确认",
                               "{name} is a nurse of {their}, not of {department}: a nurse of {department} must "
                               "confirm"),
    "rules.keeper_only": ("{name}（{role}）不能确认入库：须由暂存间管理员刷卡",
                          "{name} ({role}) cannot sign the check-in: the storage keeper must"),
    "rules.collector_not_keeper": ("收集人员不能为自己送来的医废签收：须由暂存间管理员刷卡",
                                   "The collector cannot sign for their own delivery: the storage keeper must"),
    "rules.transporter_only": ("{name}（{role}）不能确认转运：须由转运人员（司机）刷卡",
                               "{name} ({role}) cannot sign the transfer: the transporter (driver) must"),
    "rules.other_carrier": ("{name}是{their}的转运人员，本车属于{carrier}",
                            "{name} drives for {their}; this vehicle belongs to {carrier}"),
    "rules.supervisor_only": ("{name}（{role}）不能确认：作废和遗失须由主管刷卡或输入 PIN",
                              "{name} ({role}) cannot confirm: voids and losses need a supervisor (badge or PIN)"),
    "rules.self_approve": ("不能确认自己的收集：须由另一位主管确认",
                           "You cannot confirm your own round: another supervisor must"),
    "rules.nothing_to_approve": ("现在没有需要主管确认的事项", "Nothing is waiting for a supervisor now"),
    "rules.unknown_department": ("科室 {code} 不在人员名单中，请联系主管", "Department {code} is not on the roster"),
    "rules.unknown_room": ("暂存间 {code} 不在人员名单中，请联系主管", "Storage room {code} is not on the roster"),
    "rules.unknown_vehicle": ("车辆 {code} 不在人员名单中，请联系主管", "Vehicle {code} is not on the roster"),
    "rules.department": ("{name}（{code}）：请放置医废袋称重", "{name} ({code}): put a bag on the scale"),
    # storage
    "rules.keeper_signed": ("暂存间管理员 {name} 已签字确认", "Storage keeper {name} signed"),
    "rules.keeper_needed": ("请暂存间管理员刷卡确认入库", "The storage keeper must sign the check-in (badge)"),
    "rules.missing": ("{count} 袋未复称：{codes}。请找到后复称，或报告遗失（主管确认），或拒收入库",
                      "{count} bag(s) not re-weighed: {codes}. Find and re-weigh them, report them lost (a "
                      "supervisor confirms), or reject the check-in"),
    "rules.lost_reported": ("已报告遗失 {count} 袋（{codes}）：请主管刷卡或输入 PIN 确认",
                            "{count} bag(s) reported lost ({codes}): a supervisor must confirm (badge or PIN)"),
    "rules.lost_cancelled": ("已取消遗失报告", "Loss report cancelled"),
    "rules.description_needed": ("请写明遗失经过", "Describe what happened"),
    "rules.incident_saved": ("遗失记录已保存（第 {seq} 条）；请继续入库", "Loss recorded (record {seq}); carry on with "
                             "the check-in"),
    "rules.storage_rejected": ("入库被拒（第 {seq} 条）：有医废袋缺失，全部留在车上",
                               "Check-in rejected (record {seq}): bags are missing, all stay on the cart"),
    "rules.nothing_missing": ("所有医废袋都已复称，无需拒收", "Every bag is re-weighed: nothing to reject"),
    # transfer
    "rules.driver_signed": ("转运人员 {name}（{carrier}）已签字", "Transporter {name} ({carrier}) signed"),
    "rules.driver_needed": ("请转运人员（司机）刷卡确认", "The transporter (driver) must sign (badge)"),
    "rules.manifest_again": ("请再输入一次联单号核对：{what}", "Enter the manifest number again to check: {what}"),
    "rules.manifest_mismatch": ("两次输入的联单号不一致（{first} / {second}），请重新输入",
                                "The two entries differ ({first} / {second}); enter the number again"),
    "rules.manifest_confirmed": ("联单号已确认：{number}（{kind}）", "Manifest number confirmed: {number} ({kind})"),
    "rules.manifest_not_national": ("{number} 不是14位全国联单号；地方联单请按“地方联单号”",
                                    "{number} is not a 14-digit national manifest number; for a local one press "
                                    "\"Local manifest number\""),
    "rules.manifest_is_national": ("{number} 是14位数字，请按“联单号”作为全国联单输入",
                                   "{number} has 14 digits: enter it with \"Manifest number\" as a national one"),
    "rules.kind_national": ("全国电子联单", "national electronic manifest"),
    "rules.kind_local": ("地方联单", "local manifest"),
    "rules.local_what": ("地方联单 {number}", "local manifest {number}"),
    "rules.receiver_refuses": ("{receiver} 不接收{category}：请联系主管", "{receiver} does not take {category}: ask "
                               "a supervisor"),
    # labels
    "rules.components_needed": ("化学性废物须先填写主要成分，再打印标签",
                                "Chemical waste: enter its main components before printing"),
    "rules.components_set": ("主要成分：{text}", "Main components: {text}"),
    "rules.components_bad": ("主要成分须为 1-{max} 个字", "Main components: 1-{max} characters"),
    "rules.note_on": ("备注：{note}", "Note: {note}"),
    "rules.note_off": ("已取消备注：{note}", "Note removed: {note}"),
    "rules.edit_to_chemical": ("改为化学性废物须填写主要成分：请删除此袋后重新称重",
                               "Changing to chemical waste needs its components: remove the bag and weigh it again"),
    # voids
    "rules.reason_code_needed": ("请从列表中选择作废原因", "Choose a reason for the void from the list"),
    "rules.reason_text_needed": ("选择“其他”时请写明原因", "With \"other\", write the reason"),
    "rules.void_ready": ("作废 {what}（{reason}）：请主管刷卡或输入 PIN 确认",
                         "Void {what} ({reason}): a supervisor must confirm (badge or PIN)"),
    "rules.void_what_bag": ("医废袋 {code}", "bag {code}"),
    "rules.void_what_record": ("第 {seq} 条记录", "record {seq}"),
    "rules.scan_bag_first": ("请先扫描要作废的医废袋标签", "Scan the label of the bag to void first"),
    # corrections of a departed transfer
    "rules.correct_start": ("更正联单号 {number}：请输入正确的联单号（两次），再请主管确认",
                            "Correct manifest {number}: enter the right number (twice), then a supervisor confirms"),
    "rules.correct_same": ("{number} 与原联单号相同，无需更正", "{number} is the number already recorded"),
    "rules.correct_number_first": ("请先输入两次正确的联单号", "Enter the right manifest number twice first"),
    "rules.correction_saved": ("已保存更正记录 #{seq}", "Correction saved #{seq}"),
    # dwell
    "rules.dwell_warn": ("⚠ {count} 袋即将超时：{where}已 {hours} 小时（上限 {limit} 小时）",
                         "⚠ {count} bag(s) nearly overdue: {where} for {hours} h (limit {limit} h)"),
    "rules.dwell_over": ("⚠ {count} 袋已超时：{where}已 {hours} 小时（上限 {limit} 小时）",
                         "⚠ {count} bag(s) overdue: {where} for {hours} h (limit {limit} h)"),
    "rules.where_cart": ("交接后未入库", "not checked in since the handover"),
    "rules.where_storage": ("在暂存间", "in storage"),
    # buttons
    "action.note": ("备注：{note}", "Note: {note}"),
    "action.components": ("填写主要成分", "Main components"),
    "action.manifest_local": ("地方联单号", "Local manifest number"),
    "action.report_lost": ("报告遗失", "Report lost"),
    "action.reject_storage": ("拒收入库（有缺失）", "Reject check-in (bags missing)"),
    "action.cancel_lost": ("取消遗失报告", "Cancel loss report"),
    "action.correct_manifest": ("更正联单号（第 {seq} 条）", "Correct the manifest (record {seq})"),
    "title.correct": ("更正转运记录", "Correct a transfer"),
    "prompt.correct": ("请输入正确的联单号（两次）", "Enter the right manifest number (twice)"),
    "prompt.correct_approve": ("请主管刷卡或输入 PIN 确认更正", "A supervisor confirms the correction (badge or PIN)"),
    # titles and prompts of the new waits
    "prompt.void_approve": ("请主管刷卡或输入 PIN 确认作废", "A supervisor confirms the void (badge or PIN)"),
    "prompt.lost_approve": ("请主管刷卡或输入 PIN 确认遗失", "A supervisor confirms the loss (badge or PIN)"),
    "prompt.keeper": ("复称完成：请暂存间管理员刷卡确认入库", "Re-weighed: the storage keeper signs the check-in"),
    "prompt.driver": ("请转运人员（司机）刷卡确认", "The transporter (driver) signs (badge)"),
    "prompt.manifest": ("请输入转移联单号（输入两次核对）", "Enter the manifest number (twice, to check)"),
    "prompt.components": ("化学性废物：请填写主要成分", "Chemical waste: enter the main components"),
}
