"""Validation of a whole configuration: every problem listed, each with its path.

:func:`validate_config` lists *every* problem of a structurally valid configuration, each
with its path (``rings[1].sequence``, ``plans[0].timing.4.yellow``). Nothing of an invalid
configuration is applied.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from edgectl.config.junction import ConflictMatrix, barrier_groups
from edgectl.config.model import ChannelSource, Config, DaemonConfig, DetectorType, Mode
from edgectl.config.plans import plan_problems
from edgectl.config.problems import duplicates, err, warn
from edgectl.config.settings import MqttSettings
from edgectl.errors import Problem

__all__ = ["mqtt_problems", "validate_config"]


def _cyclic_compress(groups: list[int]) -> list[int]:
    """Barrier groups a ring visits, consecutive repeats (cyclically) merged."""
    out: list[int] = []
    for g in groups:
        if not out or out[-1] != g:
            out.append(g)
    while len(out) > 1 and out[0] == out[-1]:
        out.pop()
    return out


def _rotate_to(seq: list[int], start: int) -> list[int]:
    i = seq.index(start)
    return seq[i:] + seq[:i]


def validate_config(config: Config) -> list[Problem]:
    """Every semantic problem of a structurally valid configuration, with its path."""
    problems: list[Problem] = []
    problems += duplicates("phase", "phases", [p.id for p in config.phases])
    problems += duplicates("ring", "rings", [r.id for r in config.rings])
    problems += duplicates("channel", "channels", [c.id for c in config.channels])
    problems += duplicates("detector", "detectors", [d.id for d in config.detectors])
    problems += duplicates("plan", "plans", [p.id for p in config.plans])
    defined = {p.id for p in config.phases}
    problems += _check_layout(config, defined)
    problems += _check_references(config, defined)
    problems += _check_permissive(config, defined)
    problems += _check_startup(config)
    plan_ids = {p.id for p in config.plans}
    if config.control.plan not in plan_ids:
        problems.append(err("control.plan", f"plan {config.control.plan} is not defined"))
    for index, entry in enumerate(config.control.schedule):
        if entry.plan not in plan_ids:
            problems.append(
                err(f"control.schedule[{index}].plan", f"plan {entry.plan} is not defined")
            )
    problems += _check_mode_needs(config)
    problems += _check_priority_inputs(config, defined)
    problems += _check_zones(config, defined)
    for index, plan in enumerate(config.plans):
        problems += plan_problems(plan, config, f"plans[{index}]")
    if isinstance(config, DaemonConfig):
        problems += _check_outflow(config)
        problems += _check_neighbours(config, defined)
        problems += mqtt_problems(config.mqtt)
    return problems


def mqtt_problems(mqtt: MqttSettings, *, section: str = "mqtt") -> list[Problem]:
    """Credentials: never inside the broker URL (refused, never dropped silently), a
    password never in clear over plain ``mqtt://`` unless ``allow_plaintext_password``, and
    commands signed unless ``allow_unsigned_commands``.

    No message repeats the URL: it may hold a password."""
    out: list[Problem] = []
    url = mqtt.url.strip()
    if not url:
        if mqtt.failover_urls:
            out.append(err(f"{section}.failover_urls", "given without url"))
        return out
    plain = False
    named = [("url", url)] + [
        (f"failover_urls[{i}]", u.strip()) for i, u in enumerate(mqtt.failover_urls)
    ]
    for where, each in named:
        try:
            parts = urlsplit(each)
            has_userinfo = "@" in parts.netloc
        except ValueError:
            out.append(err(f"{section}.{where}", "not a valid URL"))
            continue
        if has_userinfo:
            out.append(
                err(
                    f"{section}.{where}",
                    "credentials in the broker URL are refused (they would be logged and "
                    "shown); put them in username_file and password_file",
                )
            )
        plain = plain or (
            parts.scheme.lower() in ("mqtt", "tcp")
            and mqtt.ca_file is None
            and (mqtt.cert_file is None)
        )
    if len({u for _, u in named}) != len(named):
        out.append(err(f"{section}.failover_urls", "a broker is listed twice"))
    if plain and mqtt.password_file is not None:
        if mqtt.allow_plaintext_password:
            out.append(
                warn(
                    f"{section}.password_file",
                    "the password is sent in clear over plain mqtt:// "
                    "(allow_plaintext_password = true); use mqtts://",
                )
            )
        else:
            out.append(
                err(
                    f"{section}.password_file",
                    "a password over plain mqtt:// would travel in clear: use mqtts:// (or "
                    "set allow_plaintext_password = true on a trusted network)",
                )
            )
    out += _signing_problems(mqtt, section)
    return out


def _signing_problems(mqtt: MqttSettings, section: str) -> list[Problem]:
    """Without a command key anyone with publish rights on the broker could flash, hold,
    preempt or reset this junction: refused, unless the operator opted in (a bench)."""
    if mqtt.command_key_file is not None:
        return []
    if mqtt.allow_unsigned_commands:
        return [
            warn(
                f"{section}.command_key_file",
                "commands are accepted unsigned (allow_unsigned_commands = true): anyone "
                "with publish rights on the broker can flash, hold or preempt this junction",
            )
        ]
    return [
        err(
            f"{section}.command_key_file",
            "required with a broker: without it anyone with publish rights could flash, "
            "hold or preempt this junction (`edgectl init` writes one; on a test bench set "
            "allow_unsigned_commands = true)",
        )
    ]


def _check_outflow(config: DaemonConfig) -> list[Problem]:
    """The published detectors exist and sit at the stop bar: a departure is a vehicle
    leaving the stop line, which an advance loop does not see."""
    out: list[Problem] = []
    types = {d.id: d.type for d in config.detectors}
    seen: set[int] = set()
    for det in config.outflow.detectors:
        path = "outflow.detectors"
        if det in seen:
            out.append(err(path, f"detector {det} listed twice"))
        seen.add(det)
        if det not in types:
            out.append(err(path, f"detector {det} is not defined"))
        elif types[det] is not DetectorType.STOP_BAR:
            out.append(err(path, f"detector {det} is an {types[det]} loop, not at the stop bar"))
    stop_bars = DetectorType.STOP_BAR in types.values()
    if config.outflow.enabled and not config.outflow.detectors and not stop_bars:
        out.append(warn("outflow.enabled", "no stop-bar detector: nothing to publish"))
    return out


def _check_neighbours(config: DaemonConfig, defined: set[int]) -> list[Problem]:
    """Each upstream detector feeds one of our phases once: a detector listed twice would
    count every vehicle twice."""
    out: list[Problem] = []
    feeds: dict[tuple[str, int], int] = {}
    for index, n in enumerate(config.neighbours):
        path = f"neighbours[{index}]"
        if n.intersection == config.intersection.id:
            out.append(err(f"{path}.intersection", "a junction is not its own neighbour"))
        if n.phase not in defined:
            out.append(err(f"{path}.phase", f"phase {n.phase} is not defined"))
        for det in n.detectors:
            first = feeds.get((n.intersection, det))
            if first is not None:
                also = "" if first == index else f" (also neighbours[{first}])"
                out.append(
                    err(
                        f"{path}.detectors",
                        f"detector {det} of {n.intersection} listed twice{also}",
                    )
                )
            else:
                feeds[(n.intersection, det)] = index
    return out


def _check_mode_needs(config: Config) -> list[Problem]:
    out: list[Problem] = []
    needs_cycle = (Mode.FIXED, Mode.COORDINATED)
    plans = {p.id: p for p in config.plans}

    def check(path: str, mode: Mode | None, plan_id: int) -> None:
        plan = plans.get(plan_id)
        if mode in needs_cycle and plan is not None:
            coord = plan.coordination
            if coord is None or coord.cycle <= 0:
                out.append(
                    err(
                        path,
                        f"mode {mode} needs plan {plan_id} to have a cycle and splits "
                        "([plans.coordination])",
                    )
                )

    check("control.mode", config.control.mode, config.control.plan)
    for index, entry in enumerate(config.control.schedule):
        check(f"control.schedule[{index}].mode", entry.mode, entry.plan)
    return out


def _check_layout(config: Config, defined: set[int]) -> list[Problem]:
    out: list[Problem] = []
    in_rings: dict[int, list[int]] = {}
    for r_index, ring in enumerate(config.rings):
        seen: set[int] = set()
        for phase in ring.sequence:
            if phase not in defined:
                out.append(
                    err(f"rings[{r_index}].sequence", f"phase {phase} is not defined in [[phases]]")
                )
            if phase in seen:
                out.append(
                    err(
                        f"rings[{r_index}].sequence",
                        f"phase {phase} appears twice in ring {ring.id}",
                    )
                )
            seen.add(phase)
        for phase in seen:
            in_rings.setdefault(phase, []).append(ring.id)
    in_barriers: dict[int, list[int]] = {}
    for b_index, barrier in enumerate(config.barriers):
        seen = set()
        for phase in barrier.phases:
            if phase not in defined:
                out.append(
                    err(
                        f"barriers[{b_index}].phases", f"phase {phase} is not defined in [[phases]]"
                    )
                )
            if phase in seen:
                out.append(err(f"barriers[{b_index}].phases", f"phase {phase} listed twice"))
            seen.add(phase)
        for phase in seen:
            in_barriers.setdefault(phase, []).append(b_index + 1)
    for p_index, phase_model in enumerate(config.phases):
        pid = phase_model.id
        rings = in_rings.get(pid, [])
        if not rings:
            out.append(err(f"phases[{p_index}]", f"phase {pid} is in no ring"))
        elif len(rings) > 1:
            out.append(
                err(f"phases[{p_index}]", f"phase {pid} is in more than one ring: rings {rings}")
            )
        barriers = in_barriers.get(pid, [])
        if not barriers:
            out.append(err(f"phases[{p_index}]", f"phase {pid} is in no barrier group"))
        elif len(barriers) > 1:
            out.append(
                err(
                    f"phases[{p_index}]",
                    f"phase {pid} is in more than one barrier group: barriers {barriers}",
                )
            )
    # ring sequences: each barrier group visited contiguously, the same order in every ring
    group = barrier_groups(config)
    orders: list[tuple[int, int, list[int]]] = []
    for r_index, ring in enumerate(config.rings):
        groups = [group[p] for p in ring.sequence if p in group]
        order = _cyclic_compress(groups)
        if len(order) != len(set(order)):
            out.append(
                err(
                    f"rings[{r_index}].sequence",
                    f"ring {ring.id} sequence {list(ring.sequence)} leaves a barrier group and "
                    "comes back to it: the phases of one barrier group must be consecutive",
                )
            )
            continue
        orders.append((r_index, ring.id, order))
    for i, (_, ring_a, order_a) in enumerate(orders):
        for r_index_b, ring_b, order_b in orders[i + 1 :]:
            common = [g for g in order_a if g in order_b]
            if len(common) < 3:
                continue  # two groups always alternate the same way
            a = _rotate_to(common, common[0])
            b = _rotate_to([g for g in order_b if g in common], common[0])
            if a != b:
                out.append(
                    err(
                        f"rings[{r_index_b}].sequence",
                        f"ring {ring_b} visits the barrier groups in the order "
                        f"{[g + 1 for g in b]} but ring {ring_a} in {[g + 1 for g in a]}: "
                        "all rings must cross the barriers in the same order",
                    )
                )
    return out


def _check_references(config: Config, defined: set[int]) -> list[Problem]:
    out: list[Problem] = []
    by_id = {p.id: p for p in config.phases}
    for index, ch in enumerate(config.channels):
        path = f"channels[{index}]"
        if ch.source is ChannelSource.OVERLAP:
            if not ch.overlap_parents:
                out.append(err(f"{path}.overlap_parents", "an overlap channel needs parent phases"))
            for parent in ch.overlap_parents:
                if parent not in defined:
                    out.append(err(f"{path}.overlap_parents", f"phase {parent} is not defined"))
        else:
            if ch.phase not in defined:
                out.append(err(f"{path}.phase", f"phase {ch.phase} is not defined"))
            if ch.overlap_parents:
                out.append(
                    err(
                        f"{path}.overlap_parents",
                        f"only an overlap channel has parents (source is {ch.source})",
                    )
                )
        if (
            ch.source is ChannelSource.PEDESTRIAN
            and ch.phase in by_id
            and not by_id[ch.phase].pedestrian
        ):
            out.append(
                err(
                    f"{path}.phase",
                    f"pedestrian channel on phase {ch.phase}, which has pedestrian = false",
                )
            )
    for index, det in enumerate(config.detectors):
        for field_name, phases in (
            ("call_phases", det.call_phases),
            ("extend_phases", det.extend_phases or ()),
        ):
            for phase in phases:
                if phase not in defined:
                    out.append(
                        err(f"detectors[{index}].{field_name}", f"phase {phase} is not defined")
                    )
    for index, (a, b) in enumerate(config.conflict_overrides):
        for phase in (a, b):
            if phase not in defined:
                out.append(err(f"conflict_overrides[{index}]", f"phase {phase} is not defined"))
        if a == b:
            out.append(
                err(f"conflict_overrides[{index}]", f"phase {a} cannot conflict with itself")
            )
    return out


def _check_permissive(config: Config, defined: set[int]) -> list[Problem]:
    """Flashing yellow arrows: a vehicle channel, yielding to a phase its own conflicts with,
    and never shown beside anything else its phase conflicts with - every phase that may time
    with the opposing phase may time with the channel's phase too."""
    fya = [(i, ch) for i, ch in enumerate(config.channels) if ch.permissive is not None]
    if not fya:
        return []
    out: list[Problem] = []
    matrix = ConflictMatrix.from_config(config)
    for index, ch in fya:
        path = f"channels[{index}].permissive"
        opposing = ch.permissive
        assert opposing is not None
        if ch.source is not ChannelSource.VEHICLE:
            out.append(err(path, f"only a vehicle channel can be permissive (not {ch.source})"))
            continue
        if opposing not in defined or ch.phase not in defined:
            out.append(err(path, f"phase {opposing} is not defined"))
            continue
        if not matrix.phases_conflict(ch.phase, opposing):
            out.append(
                err(
                    path,
                    f"phase {ch.phase} does not conflict with phase {opposing}: "
                    "there is nothing to yield to",
                )
            )
            continue
        for index_b, other_ch in enumerate(config.channels):
            parents = set(other_ch.overlap_parents)
            if (
                other_ch.source is ChannelSource.OVERLAP
                and opposing in parents
                and len(parents) > 1
                and matrix.channels_conflict(ch.id, other_ch.id)
            ):
                out.append(
                    err(
                        path,
                        f"overlap channels[{index_b}] (parents {sorted(parents)}) is green with "
                        f"phase {opposing} and with other phases, and conflicts with phase "
                        f"{ch.phase}: the flashing yellow arrow would be shown beside it",
                    )
                )
        for other in sorted(defined - {ch.phase, opposing}):
            if not matrix.phases_conflict(other, opposing) and matrix.phases_conflict(
                other, ch.phase
            ):
                out.append(
                    err(
                        path,
                        f"phase {other} may time with phase {opposing} but conflicts with "
                        f"phase {ch.phase}: the flashing yellow arrow would be shown beside it",
                    )
                )
    return out


def _check_startup(config: Config) -> list[Problem]:
    out: list[Problem] = []
    startup = [(i, p.id) for i, p in enumerate(config.phases) if p.startup]
    ring_of = {phase: ring.id for ring in config.rings for phase in ring.sequence}
    group = barrier_groups(config)
    per_ring: dict[int, int] = {}
    for index, pid in startup:
        ring = ring_of.get(pid)
        if ring is None:
            continue
        if ring in per_ring:
            out.append(
                err(
                    f"phases[{index}].startup",
                    f"phases {per_ring[ring]} and {pid} are both start-up phases of ring {ring}",
                )
            )
        else:
            per_ring[ring] = pid
    groups = {group[pid] for _, pid in startup if pid in group}
    if len(groups) > 1:
        index = startup[-1][0]
        out.append(
            err(
                f"phases[{index}].startup",
                f"start-up phases {[pid for _, pid in startup]} are in different barrier groups",
            )
        )
    return out


def _check_zones(config: Config, defined: set[int]) -> list[Problem]:
    """Zone sensors: unique ids, defined phases, fallback loops that exist and serve the
    zone's phases (a zone without loops has nothing to fall back to: a warning)."""
    out = duplicates("zone", "zones", [z.id for z in config.zones])
    loops = {d.id: d for d in config.detectors}
    for index, zone in enumerate(config.zones):
        path = f"zones[{index}]"
        for phase in zone.phases:
            if phase not in defined:
                out.append(err(f"{path}.phases", f"phase {phase} is not defined"))
        for det in zone.loops:
            d = loops.get(det)
            if d is None:
                out.append(err(f"{path}.loops", f"detector {det} is not defined"))
            elif not (set(d.call_phases) | set(d.extends)) & set(zone.phases):
                out.append(
                    warn(
                        f"{path}.loops",
                        f"detector {det} neither calls nor extends phases {list(zone.phases)}",
                    )
                )
        if len(set(zone.loops)) != len(zone.loops):
            out.append(err(f"{path}.loops", "a detector listed twice"))
        if not zone.loops:
            out.append(warn(f"{path}.loops", f"zone {zone.id} has no loops to fall back to"))
    return out


def _check_priority_inputs(config: Config, defined: set[int]) -> list[Problem]:
    """Local priority inputs: defined detectors and phases, one movement, one input each."""
    out: list[Problem] = []
    detectors = {d.id for d in config.detectors}
    group_of = barrier_groups(config)
    ring_of = {p: r.id for r in config.rings for p in r.sequence}
    for index, pin in enumerate(config.priority_inputs):
        path = f"priority_inputs[{index}]"
        for name, det in (("detector", pin.detector), ("checkout_detector", pin.checkout_detector)):
            if det is not None and det not in detectors:
                out.append(err(f"{path}.{name}", f"detector {det} is not defined"))
        unknown = [p for p in pin.phases if p not in defined]
        if unknown:
            out.append(err(f"{path}.phases", f"phase(s) {unknown} not defined"))
        elif len({group_of.get(p) for p in pin.phases}) > 1 or len(
            {ring_of.get(p) for p in pin.phases}
        ) < len(pin.phases):
            out.append(err(f"{path}.phases", f"phases {list(pin.phases)} cannot be green together"))
    seen: dict[int, int] = {}
    for index, pin in enumerate(config.priority_inputs):
        if pin.detector in seen:
            out.append(
                err(
                    f"priority_inputs[{index}].detector",
                    f"detector {pin.detector} is already priority_inputs[{seen[pin.detector]}]",
                )
            )
        seen.setdefault(pin.detector, index)
    return out
