"""``[ledger]``: the zone a ledger's days are counted in, and how long finished exports are kept."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.ledger.zone import DEFAULT_ZONE, zone


class LedgerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # IANA zone of the ledger's days and months (summaries, date filters, exports); records keep their own offset
    timezone: str = DEFAULT_ZONE
    exports_keep_h: float = Field(24.0, gt=0, le=24 * 90)  # h: a finished export file is deleted after this
    exports_running_max: int = Field(2, ge=1, le=16)  # exports running at once; one more waits its turn

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value
