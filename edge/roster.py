"""People and places as data: who may sign what, and the names records and labels carry.

The ``[roster]`` section of the cart's config (waste-domain §8.1 reference data): staff badges with
a name, roles (``catalogue.ROLES``) and departments; the departments, storage rooms and vehicles whose
codes the cart scans; the carriers and receivers (licensed disposers) a transfer names, with the
disposal method (处置方法) each receiver applies per category.  The workflow reads it to decide who
may sign (a nurse of *that* department, a keeper, a supervisor …) and copies names beside codes
into every record, with the roster's ``version`` and a digest of its content, so a record says
which roster it was judged by.  Pure data; a config reload replaces it.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from edge import wire
from edge.catalogue import CATEGORY, ROLE

__all__ = ["Carrier", "Department", "Person", "Receiver", "Room", "Roster", "Vehicle"]


def _id(value: str) -> str:
    try:
        return wire.check_id(value, "id")
    except wire.ContractError as exc:
        raise ValueError(str(exc)) from exc


Ident = Annotated[str, AfterValidator(_id)]
Name = Annotated[str, Field(min_length=1, max_length=60)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _roles(value: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [r for r in value if r not in ROLE]
    if unknown or not value:
        raise ValueError(f"roles must be one or more of {', '.join(ROLE)} (got {', '.join(value) or 'none'})")
    return value


class Person(_Strict):
    """A staff badge (its id is the badge's person id): who it is and what it may sign."""

    name: Name
    roles: Annotated[tuple[str, ...], AfterValidator(_roles)]
    departments: tuple[Ident, ...] = ()  # a nurse signs for these departments only
    carrier: Ident | None = None          # a transporter drives for this carrier

    def has(self, role: str) -> bool:
        return role in self.roles


class Department(_Strict):
    name: Name


class Room(_Strict):
    """A storage room (暂存间)."""

    name: Name


class Vehicle(_Strict):
    """A transporter's vehicle: its plate, who runs it and where it takes the waste."""

    plate: Name
    carrier: Ident
    receiver: Ident


class Carrier(_Strict):
    """承运人: the transport company (Transfer Measures Art. 11)."""

    name: Name
    uscc: str = Field("", max_length=18)      # 统一社会信用代码
    licence: str = Field("", max_length=40)   # 道路危险货物运输许可证 / 营运证


class Receiver(_Strict):
    """接受人: the licensed disposer (危险废物经营许可证), the 最终去向 of a transfer."""

    name: Name
    uscc: str = Field("", max_length=18)
    licence: str = Field(min_length=1, max_length=40)
    address: str = Field("", max_length=100)
    # category (wire enum) -> 处置方法, e.g. "高温蒸汽灭菌后焚烧"; a category not listed is not accepted.
    disposal: dict[str, Annotated[str, Field(min_length=1, max_length=50)]]

    @model_validator(mode="after")
    def _categories(self) -> Receiver:
        unknown = sorted(set(self.disposal) - set(CATEGORY))
        if unknown or not self.disposal:
            raise ValueError(f"disposal: keys must be categories ({', '.join(CATEGORY)}); got {', '.join(unknown)}"
                             if unknown else "disposal: name the method for at least one category")
        return self

    @property
    def destination(self) -> str:
        """最终去向 as written into a transfer: the disposer's name, licence and address."""
        return " ".join(p for p in (self.name, f"许可证 {self.licence}", self.address) if p)


class Roster(_Strict):
    """Everyone and everything the cart may meet; ids are the codes scanned (badges, QR codes)."""

    version: str = Field(min_length=1, max_length=32)  # named in every record
    org_name: Name                                    # 产生单位 on labels and in records
    people: dict[Ident, Person] = Field(default_factory=dict)
    departments: dict[Ident, Department] = Field(default_factory=dict)
    rooms: dict[Ident, Room] = Field(default_factory=dict)
    vehicles: dict[Ident, Vehicle] = Field(default_factory=dict)
    carriers: dict[Ident, Carrier] = Field(default_factory=dict)
    receivers: dict[Ident, Receiver] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> Roster:
        problems: list[str] = []
        for pid, p in self.people.items():
            problems += [f"people.{pid}.departments: {d} is not in departments" for d in p.departments
                         if d not in self.departments]
            if p.has("nurse") and not p.departments:
                problems.append(f"people.{pid}: a nurse needs the departments she signs for")
            if p.carrier is not None and p.carrier not in self.carriers:
                problems.append(f"people.{pid}.carrier: {p.carrier} is not in carriers")
        for vid, v in self.vehicles.items():
            if v.carrier not in self.carriers:
                problems.append(f"vehicles.{vid}.carrier: {v.carrier} is not in carriers")
            if v.receiver not in self.receivers:
                problems.append(f"vehicles.{vid}.receiver: {v.receiver} is not in receivers")
        if self.departments and not self.rooms:
            problems.append("rooms: at least one storage room is needed (a handover's 去向 is the first room)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def destination(self) -> tuple[str, Room]:
        """Where handed-over bags go next (去向): the first storage room."""
        return next(iter(self.rooms.items()))

    @cached_property
    def digest(self) -> str:
        """16 hex digits of SHA-256 over the roster's content: changes whenever anything in it does."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def stamp(self) -> dict[str, str]:
        """What a record names: ``{"version": …, "digest": …}``."""
        return {"version": self.version, "digest": self.digest}

    def person(self, pid: str) -> Person | None:
        return self.people.get(pid)

    def name_of(self, pid: str) -> str:
        p = self.people.get(pid)
        return p.name if p else pid

    def department_name(self, code: str) -> str:
        d = self.departments.get(code)
        return d.name if d else code

    def room_name(self, code: str) -> str:
        r = self.rooms.get(code)
        return r.name if r else code


def example(org_name: str = "示范医院") -> Roster:
    """The roster of the demo, the simulated fleet and the tests' carts: one of each kind of person
    (badge ids as ``sim_devices`` and the tests print them), three departments, a room, a vehicle."""
    disposal = {"INFECTIOUS": "高温蒸汽灭菌", "SHARPS": "高温蒸汽灭菌", "PATHOLOGICAL": "焚烧",
                "PHARMACEUTICAL": "焚烧", "CHEMICAL": "焚烧"}
    return Roster(
        version="demo-1", org_name=org_name,
        people={
            "COL-01": Person(name="王收集", roles=("collector",)),
            "COL-02": Person(name="陈收集", roles=("collector",)),
            "NUR-01": Person(name="李护士", roles=("nurse",), departments=("D01",)),
            "NUR-02": Person(name="赵护士", roles=("nurse",), departments=("D02", "D03")),
            "KEEP-01": Person(name="孙库管", roles=("keeper",)),
            "SUP-01": Person(name="周主管", roles=("supervisor",)),
            "DRV-01": Person(name="吴司机", roles=("transporter",), carrier="CARRIER1"),
        },
        departments={"D01": Department(name="心血管内科"), "D02": Department(name="普外科"),
                     "D03": Department(name="检验科")},
        rooms={"ROOM1": Room(name="医疗废物暂存间")},
        vehicles={"V1": Vehicle(plate="浙A·D1234", carrier="CARRIER1", receiver="DISPOSER1")},
        carriers={"CARRIER1": Carrier(name="杭州医废转运有限公司", licence="浙交运管许可杭字330100001")},
        receivers={"DISPOSER1": Receiver(name="杭州医疗废物集中处置中心", licence="浙危废经第3301000001号",
                                         address="杭州市余杭区", disposal=disposal)},
    )
