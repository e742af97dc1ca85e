"""Regenerate tests/peer_tables.py from the real peer libraries.

Not a test and never imported by the tests: it needs PyTorch, optax (with JAX),
Hugging Face transformers and timm, none of which kschedules depends on. Run it
once in a scratch environment, from the repository root:

    python -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch==2.13.0 numpy optax jax transformers
    /tmp/refenv/bin/pip install --no-deps timm pyyaml huggingface_hub safetensors
    /tmp/refenv/bin/python tests/make_peer_tables.py

It writes tests/peer_tables.py next to itself: one dict per peer function, each
mapping a case name to {"call": the exact peer call, "steps": [...], "lr": [...]}.
"lr[i]" is the learning rate that the optimizer update numbered steps[i] uses:
for a torch scheduler, the param group's lr before the steps[i]-th
scheduler.step() (steps[0] = 0 is the value right after construction).

timm is imported without its package __init__ (which pulls torchvision for its
models): only the torch-only subpackage timm.scheduler is loaded.
"""

import datetime
import importlib.metadata
import importlib.util
import os
import sys
import types
import warnings

import numpy as np
import torch

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
import transformers  # noqa: E402


def _import_timm_scheduler():
    """Load timm.scheduler without running timm/__init__.py (it needs torchvision)."""
    spec = importlib.util.find_spec("timm")
    if spec is None:
        raise SystemExit("timm is not installed (pip install --no-deps timm)")
    stub = types.ModuleType("timm")
    stub.__path__ = list(spec.submodule_search_locations)
    sys.modules["timm"] = stub
    import timm.scheduler  # noqa: F401

    return sys.modules["timm"]


timm = _import_timm_scheduler()

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "peer_tables.py")
COMMAND = "/tmp/refenv/bin/python tests/make_peer_tables.py"
SGD = "opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr={lr}{extra}); "

WARNINGS = []  # (table, case, category, message)


def _record_warnings(table, case, caught):
    for w in caught:
        WARNINGS.append((table, case, w.category.__name__, str(w.message).strip()))


def torch_case(table, case, call, n_steps, one_cycle=False):
    """Run `call` (statements defining `opt` and `sched`) and record lr before each step()."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        namespace = {"torch": torch, "transformers": transformers, "timm": timm}
        exec(call, namespace)
        opt, sched = namespace["opt"], namespace["sched"]
        lrs = []
        for _ in range(n_steps):
            lrs.append(float(opt.param_groups[0]["lr"]))
            opt.step()
            sched.step()
        entry = {"call": call, "steps": list(range(n_steps)), "lr": lrs}
        if one_cycle:
            # After n_steps = total_steps step() calls torch gives its value at
            # step == total_steps (an extrapolation); one more step() raises.
            entry["lr_at_total"] = float(opt.param_groups[0]["lr"])
            try:
                opt.step()
                sched.step()
                entry["raises_after"] = None
                entry["lr_after_total"] = float(opt.param_groups[0]["lr"])
            except Exception as error:  # what torch raises is the datum
                entry["raises_after"] = f"{type(error).__name__}: {error}"
    _record_warnings(table, case, caught)
    return entry


def timm_case(table, case, call, n_steps):
    """Record the lr after sched.step(epoch=t), i.e. timm's value for epoch t (= _get_lr(t))."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        namespace = {"torch": torch, "timm": timm}
        exec(call, namespace)
        opt, sched = namespace["opt"], namespace["sched"]
        after_construction = float(opt.param_groups[0]["lr"])
        lrs = []
        for t in range(n_steps):
            sched.step(epoch=t)
            lr = float(opt.param_groups[0]["lr"])
            assert lr == sched._get_lr(t)[0], (case, t)
            lrs.append(lr)
    _record_warnings(table, case, caught)
    return {
        "call": call,
        "steps": list(range(n_steps)),
        "lr": lrs,
        "lr_after_construction": after_construction,
    }


def optax_case(table, case, call, n_steps):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schedule = eval(call, {"optax": optax})
        lrs = []
        for step in range(n_steps):
            value = schedule(jnp.asarray(step, dtype=jnp.int64))
            assert value.dtype == jnp.float64, (case, value.dtype)
            lrs.append(float(value))
    _record_warnings(table, case, caught)
    return {"call": call, "steps": list(range(n_steps)), "lr": lrs}


def one_cycle_lr():
    table = "ONE_CYCLE_LR"
    cases = {
        "cos_2phase": "max_lr=0.1, total_steps=100, anneal_strategy='cos', three_phase=False",
        "linear_2phase": "max_lr=0.1, total_steps=100, anneal_strategy='linear', three_phase=False",
        "cos_3phase": "max_lr=0.1, total_steps=100, anneal_strategy='cos', three_phase=True",
        "linear_3phase": "max_lr=0.1, total_steps=100, anneal_strategy='linear', three_phase=True",
        "cos_2phase_37": (
            "max_lr=0.05, total_steps=37, pct_start=0.25, anneal_strategy='cos', div_factor=10.0, "
            "final_div_factor=100.0, three_phase=False"
        ),
        "linear_3phase_37": (
            "max_lr=0.05, total_steps=37, pct_start=0.25, anneal_strategy='linear', div_factor=10.0, "
            "final_div_factor=100.0, three_phase=True"
        ),
    }
    out = {}
    for case, args in cases.items():
        total = int(args.split("total_steps=")[1].split(",")[0])
        call = SGD.format(lr=0.1, extra=", momentum=0.9") + (
            f"sched = torch.optim.lr_scheduler.OneCycleLR(opt, {args}, cycle_momentum=False)"
        )
        out[case] = torch_case(table, case, call, total, one_cycle=True)
    return out


def cyclic_lr():
    table = "CYCLIC_LR"
    out = {}
    for mode, gamma in (("triangular", ""), ("triangular2", ""), ("exp_range", ", gamma=0.99")):
        for down, suffix in (("None", ""), ("6", "_down6")):
            case = f"{mode}{suffix}"
            call = SGD.format(lr=0.1, extra="") + (
                "sched = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, "
                f"step_size_up=10, step_size_down={down}, mode='{mode}'{gamma}, cycle_momentum=False)"
            )
            out[case] = torch_case(table, case, call, 100)
    return out


def exponential_lr():
    call = SGD.format(lr=0.1, extra="") + "sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)"
    return {"gamma_0.9": torch_case("EXPONENTIAL_LR", "gamma_0.9", call, 31)}


def sequential_lr():
    table = "SEQUENTIAL_LR"
    L = "torch.optim.lr_scheduler."
    cases = {
        "exp_cosine_multistep": (
            f"sched = {L}SequentialLR(opt, [{L}ExponentialLR(opt, gamma=0.9), "
            f"{L}CosineAnnealingLR(opt, T_max=10, eta_min=0.01), "
            f"{L}MultiStepLR(opt, milestones=[3], gamma=0.5)], milestones=[5, 15])",
            31,
        ),
        "constant_exp_step": (
            f"sched = {L}SequentialLR(opt, [{L}ConstantLR(opt, factor=0.5, total_iters=4), "
            f"{L}ExponentialLR(opt, gamma=0.8), {L}StepLR(opt, step_size=2, gamma=0.5)], "
            "milestones=[4, 9])",
            21,
        ),
    }
    return {
        case: torch_case(table, case, SGD.format(lr=0.1, extra="") + body, n)
        for case, (body, n) in cases.items()
    }


def chained_scheduler():
    L = "torch.optim.lr_scheduler."
    call = SGD.format(lr=0.1, extra="") + (
        f"sched = {L}ChainedScheduler([{L}ExponentialLR(opt, gamma=0.95), "
        f"{L}MultiStepLR(opt, milestones=[5, 10], gamma=0.5)])"
    )
    return {"exp_multistep": torch_case("CHAINED_SCHEDULER", "exp_multistep", call, 21)}


def optax_exponential_decay():
    table = "OPTAX_EXPONENTIAL_DECAY"
    cases = {
        "begin5_floor": "init_value=0.1, transition_steps=10, decay_rate=0.5, transition_begin=5, "
        "staircase=False, end_value=0.02",
        "begin5_floor_staircase": "init_value=0.1, transition_steps=10, decay_rate=0.5, "
        "transition_begin=5, staircase=True, end_value=0.02",
        "begin5_no_end": "init_value=0.1, transition_steps=10, decay_rate=0.5, transition_begin=5, "
        "staircase=False, end_value=None",
        "growth_ceiling": "init_value=0.1, transition_steps=4, decay_rate=1.5, transition_begin=0, "
        "end_value=0.5",
        "per_step_0.9": "init_value=0.1, transition_steps=1, decay_rate=0.9",
    }
    return {
        case: optax_case(table, case, f"optax.exponential_decay({args})", 61)
        for case, args in cases.items()
    }


def optax_join_schedules():
    call = (
        "optax.join_schedules([optax.constant_schedule(0.1), optax.linear_schedule(0.1, 0.01, 15), "
        "optax.cosine_decay_schedule(0.05, 10, alpha=0.2)], boundaries=[10, 25])"
    )
    return {"constant_linear_cosine": optax_case("OPTAX_JOIN_SCHEDULES", "constant_linear_cosine", call, 41)}


def hf_wsd_schedule():
    table = "HF_WSD_SCHEDULE"
    out = {}
    for warmup in ("linear", "cosine", "1-sqrt"):
        for decay in ("linear", "cosine", "1-sqrt"):
            case = f"{warmup}__{decay}"
            call = SGD.format(lr=0.1, extra="") + (
                "sched = transformers.get_wsd_schedule(opt, num_warmup_steps=5, num_decay_steps=8, "
                f"num_stable_steps=10, warmup_type='{warmup}', decay_type='{decay}', "
                "min_lr_ratio=0.1, num_cycles=0.5)"
            )
            out[case] = torch_case(table, case, call, 31)
    return out


def hf_inverse_sqrt_schedule():
    table = "HF_INVERSE_SQRT_SCHEDULE"
    cases = {
        "warmup10": "num_warmup_steps=10",
        "warmup10_timescale25": "num_warmup_steps=10, timescale=25",
    }
    return {
        case: torch_case(
            table,
            case,
            SGD.format(lr=0.1, extra="") + f"sched = transformers.get_inverse_sqrt_schedule(opt, {args})",
            61,
        )
        for case, args in cases.items()
    }


def timm_tanh_lr():
    call = SGD.format(lr=0.1, extra="") + (
        "sched = timm.scheduler.TanhLRScheduler(opt, t_initial=20, lb=-7.0, ub=3.0, lr_min=0.001, "
        "warmup_t=0, cycle_limit=1, t_in_epochs=True)"
    )
    return {"t20": timm_case("TIMM_TANH_LR", "t20", call, 31)}


def timm_cosine_lr():
    call = SGD.format(lr=0.1, extra="") + (
        "sched = timm.scheduler.CosineLRScheduler(opt, t_initial=10, lr_min=0.001, cycle_mul=2.0, "
        "cycle_decay=0.5, cycle_limit=2, t_in_epochs=True)"
    )
    return {"t10_mul2_decay0.5_limit2": timm_case("TIMM_COSINE_LR", "t10_mul2_decay0.5_limit2", call, 41)}


TABLES = [
    ("ONE_CYCLE_LR", "torch.optim.lr_scheduler.OneCycleLR", one_cycle_lr),
    ("CYCLIC_LR", "torch.optim.lr_scheduler.CyclicLR", cyclic_lr),
    ("EXPONENTIAL_LR", "torch.optim.lr_scheduler.ExponentialLR", exponential_lr),
    ("SEQUENTIAL_LR", "torch.optim.lr_scheduler.SequentialLR", sequential_lr),
    ("CHAINED_SCHEDULER", "torch.optim.lr_scheduler.ChainedScheduler", chained_scheduler),
    ("OPTAX_EXPONENTIAL_DECAY", "optax.exponential_decay", optax_exponential_decay),
    ("OPTAX_JOIN_SCHEDULES", "optax.join_schedules", optax_join_schedules),
    ("HF_WSD_SCHEDULE", "transformers.get_wsd_schedule", hf_wsd_schedule),
    ("HF_INVERSE_SQRT_SCHEDULE", "transformers.get_inverse_sqrt_schedule", hf_inverse_sqrt_schedule),
    ("TIMM_TANH_LR", "timm.scheduler.TanhLRScheduler", timm_tanh_lr),
    ("TIMM_COSINE_LR", "timm.scheduler.CosineLRScheduler", timm_cosine_lr),
]


def _format_value(value, indent):
    if isinstance(value, list):
        items = [repr(float(v)) if isinstance(v, float) else repr(v) for v in value]
        lines, line = [], ""
        for item in items:
            piece = item + ", "
            if line and len(indent) + 4 + len(line) + len(piece) > 100:
                lines.append(line.rstrip())
                line = ""
            line += piece
        if line:
            lines.append(line.rstrip())
        inner = "".join(f"{indent}    {ln}\n" for ln in lines)
        return "[\n" + inner + indent + "]"
    return repr(value)


def _format_table(name, cases):
    out = [f"{name} = {{"]
    for case, entry in cases.items():
        out.append(f"    {case!r}: {{")
        for key, value in entry.items():
            out.append(f"        {key!r}: {_format_value(value, '        ')},")
        out.append("    },")
    out.append("}")
    return "\n".join(out)


def _versions():
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jaxlib": importlib.metadata.version("jaxlib"),
        "optax": optax.__version__,
        "transformers": transformers.__version__,
        "timm": importlib.metadata.version("timm"),
    }


def main():
    results = [(name, peer, build()) for name, peer, build in TABLES]
    versions = _versions()
    today = datetime.date.today().isoformat()
    if WARNINGS:
        seen = {}
        for table, case, category, message in WARNINGS:
            seen.setdefault((category, message), []).append(f"{table}[{case!r}]")
        warning_text = "\n".join(
            f"- {category}: {message!r}\n  in {', '.join(where)}" for (category, message), where in seen.items()
        )
    else:
        warning_text = "None: no peer call emitted a warning (all were recorded with simplefilter('always'))."
    one_cycle = dict(results[0][2])
    peak_text = "\n".join(
        f"  {case}: max {max(e['lr'])!r} at step {e['lr'].index(max(e['lr']))}, "
        f"lr_at_total {e['lr_at_total']!r}"
        for case, e in one_cycle.items()
    )
    version_text = "\n".join(f"- {k} {v}" for k, v in versions.items())
    tables_text = "\n".join(f"- {name}: {peer} ({len(cases)} cases)" for name, peer, cases in results)
    doc = f'''r"""Reference learning rates from the peer libraries, as test data.

GENERATED FILE, do not edit by hand. Made on {today} by

    {COMMAND}

(run from the repository root, in a scratch virtualenv; tests/make_peer_tables.py says
how to build it), with:

{version_text}

Each table maps a case name to {{"call": the exact peer call, "steps": [...], "lr": [...]}};
lr[i] is the learning rate used by the optimizer update numbered steps[i]. For the torch
schedulers (and transformers' LambdaLR ones) that is optimizer.param_groups[0]["lr"] before
the steps[i]-th scheduler.step(), so steps[0] = 0 is the value right after construction;
each call was exec'd as written (it defines `opt` and `sched`) and optimizer.step() was
called before every scheduler.step(). All values are Python floats (float64) in full repr.

- ONE_CYCLE_LR entries also hold "lr_at_total", the value torch gives after total_steps
  scheduler.step() calls (its extrapolation at step == total_steps), and "raises_after",
  what one more step() raises.
- optax schedules were evaluated with jax_enable_x64 on, at int64 steps, so in float64.
- timm: "lr" is optimizer lr after sched.step(epoch=t), which equals sched._get_lr(t)[0]
  (checked for every t); timm's train loop calls step(epoch + 1) at the end of each epoch,
  so this is the lr of epoch t. "lr_after_construction" is the lr before any step(): timm
  sets the base lr there (not _get_lr(0)). timm was loaded as timm.scheduler alone (its
  package __init__ needs torchvision, not installed).

Tables:

{tables_text}

Peer behaviour worth knowing when matching these tables:

- OneCycleLR's phase ends are float(pct_start * total_steps) - 1 (then 2 * pct_start * total_steps - 2 for
  three_phase), and a step belongs to the first phase whose end it does not exceed; with
  pct_start * total_steps not an integer (the _37 cases) no integer step reaches max_lr.
  Largest recorded lr per case:
{peak_text}
  At step == total_steps torch extrapolates the last phase (linear goes below zero, cos
  turns back up); the step after raises ValueError.
- get_wsd_schedule's warmup starts from min_lr_ratio * lr (factor * (1 - min_lr_ratio) +
  min_lr_ratio), not from 0, and holds min_lr_ratio * lr after the decay.
- TanhLRScheduler with cycle_limit=1 gives its tanh formula for t < t_initial and lr_min from
  t = t_initial on; the formula's own value at t = t_initial would be
  lr_min + (lr - lr_min) * (1 - tanh(ub)) / 2, a little above lr_min.
- SequentialLR and join_schedules agree here: each piece restarts on its own clock from the
  base lr at its milestone.

Warnings emitted by the peer calls:

{warning_text}
"""'''
    parts = [doc, "", f"VERSIONS = {versions!r}", ""]
    for name, _, cases in results:
        parts += ["", _format_table(name, cases), ""]
    text = "\n".join(parts)
    with open(OUTPUT, "w") as f:
        f.write(text)
    print(f"wrote {OUTPUT}")
    for table, case, category, message in WARNINGS:
        print(f"warning: {table}[{case}] {category}: {message}")


if __name__ == "__main__":
    main()
