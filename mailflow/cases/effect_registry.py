"""The one registry of effect names: each effect's handler and the check of its argument."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mailflow.cases import clock_effects, reply_effects, staff_effects
from mailflow.cases import product_effects as product
from mailflow.cases.effect_run import EffectRun
from mailflow.cases.machine_terms import Effect


@dataclass(frozen=True)
class EffectSpec:
    """One effect of the closed vocabulary: its handler and what its argument must be.

    `arg` is None (the effect takes no argument), "reply_template" (a file
    templates/replies/<arg>.txt.j2 must exist), "name" (any lower_case name) or a tuple of the
    allowed values. state_machines/*.yaml naming anything else is rejected at start-up.
    """

    handler: Callable[[EffectRun, Effect], None]
    arg: str | tuple[str, ...] | None
    description: str


_CORE = {**clock_effects.HANDLERS, **reply_effects.HANDLERS, **staff_effects.HANDLERS}
DOCUMENT_KINDS = ("cargo", "oficio", "autorizacion_viaje", "constancia")
STAFF_ROLES = ("staff", "manager")
DELIVERY_TARGETS = ("migraciones",)
EFFECTS: dict[str, EffectSpec] = {
    "start_clock": EffectSpec(_CORE["start_clock"], None, "inicia el plazo en días hábiles"),
    "pause_clock": EffectSpec(_CORE["pause_clock"], None, "suspende el plazo"),
    "resume_clock": EffectSpec(_CORE["resume_clock"], None, "reanuda el plazo"),
    "stop_clock": EffectSpec(_CORE["stop_clock"], None, "concluye el plazo"),
    "open_subsanacion_window": EffectSpec(
        _CORE["open_subsanacion_window"], None, "abre el plazo de subsanación"
    ),
    "issue_document": EffectSpec(
        _CORE["issue_document"], DOCUMENT_KINDS, "emite y firma un documento"
    ),
    "send_reply": EffectSpec(_CORE["send_reply"], "reply_template", "responde al solicitante"),
    "deliver": EffectSpec(
        product.deliver, DELIVERY_TARGETS, "envía los documentos a otra autoridad"
    ),
    "record_delivery": EffectSpec(product.record_delivery, None, "anota la hora de entrega"),
    "apply_registry_update": EffectSpec(
        product.apply_registry_update, None, "escribe en el registro los datos del trámite"
    ),
    "flag": EffectSpec(_CORE["flag"], "name", "marca el expediente"),
    "assign": EffectSpec(_CORE["assign"], STAFF_ROLES, "asigna el expediente"),
    "notify": EffectSpec(_CORE["notify"], STAFF_ROLES, "avisa al personal"),
}
"""The one registry of effect names: handler and argument check (machine_check uses it)."""
