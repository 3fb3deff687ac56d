"""What the cart says about a national manifest number: what is wrong with one, and how it reads back.

The collector types the number from a paper or a phone; each problem names the part that is wrong
(which digits, what they should be), so the mistake can be found on the paper without a manual.
"""

from __future__ import annotations

# key -> (zh, en); {fields} are filled by t().  Keep both sides' fields identical (a test checks).
ENTRIES: dict[str, tuple[str, str]] = {
    "manifest.not_digits": ("全国联单号只能是14位数字，“{number}”含有其他字符",
                            "A national manifest number is 14 digits only; “{number}” has other characters"),
    "manifest.length": ("全国联单号应为14位数字，输入了{length}位",
                        "A national manifest number has 14 digits; {length} were entered"),
    "manifest.year": ("联单号前4位是年份：{year}年不在{first}年至{last}年之间",
                      "The first 4 digits are the year: {year} is not between {first} and {last}"),
    "manifest.province": ("联单号第5–6位是省份代码：没有代码为{code}的省份",
                          "Digits 5–6 are the province code: no province has code {code}"),
    "manifest.city": ("联单号第5–8位是省份和城市代码：{code}不是{province}的城市",
                      "Digits 5–8 are the province and city code: {code} is not a city of {province}"),
    # read back before the number is asked for a second time
    "manifest.describe": ("{year}年 {province} {city} 第{serial}号",
                          "{year}, {province} {city}, no. {serial}"),
}
